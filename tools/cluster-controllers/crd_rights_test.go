package main

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestGrantable(t *testing.T) {
	crd := func(name, group string) apiService { return apiService{name: name, group: group, automanaged: "true"} }
	builtIn := func(name, group string) apiService {
		return apiService{name: name, group: group, automanaged: "onstart"}
	}
	aggregated := func(name, group string) apiService { return apiService{name: name, group: group} }
	cluster := []apiService{
		builtIn("v1.admissionregistration.k8s.io", "admissionregistration.k8s.io"),
		builtIn("v1beta1.admissionregistration.k8s.io", "admissionregistration.k8s.io"),
		// A tenant's CRD in a version the apiserver does not serve gets an APIService of its own.
		crd("v1alpha1.admissionregistration.k8s.io", "admissionregistration.k8s.io"),
		crd("v1.example.com", "example.com"),
		crd("v2.example.com", "example.com"),
		aggregated("v1beta1.metrics.k8s.io", "metrics.k8s.io"),
		crd("v1.metrics.k8s.io", "metrics.k8s.io"),
	}
	for _, tc := range []struct {
		group   string
		ok      bool
		refusal string
	}{
		{"example.com", true, ""},
		{"admissionregistration.k8s.io", false, "kube-apiserver itself"},
		{"metrics.k8s.io", false, "aggregated API"},
		{"not-yet.example.com", false, ""}, // waits for its APIService, without a refusal
		{"", false, ""},
	} {
		ok, refusal := grantable(tc.group, cluster)
		if ok != tc.ok || (tc.refusal == "") != (refusal == "") || !strings.Contains(refusal, tc.refusal) {
			t.Errorf("grantable(%q) = %v, %q; want %v, %q", tc.group, ok, refusal, tc.ok, tc.refusal)
		}
	}
}

func TestTrimKeepsWhatTheDecisionReads(t *testing.T) {
	crd := map[string]interface{}{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]interface{}{"name": "widgets.example.com", "uid": "u1", "annotations": map[string]interface{}{"big": "x"}},
		"spec": map[string]interface{}{"group": "example.com", "names": map[string]interface{}{"plural": "widgets", "kind": "Widget"},
			"versions": []interface{}{map[string]interface{}{"name": "v1"}}},
		"status": map[string]interface{}{"conditions": []interface{}{map[string]interface{}{"type": "Established", "status": "True"}}},
	}
	once, err := trim(&unstructured.Unstructured{Object: crd})
	if err != nil {
		t.Fatal(err)
	}
	twice, _ := trim(once)
	u := twice.(*unstructured.Unstructured)
	if specGroup(u) != "example.com" || !established(u) || u.GetName() != "widgets.example.com" || u.GetUID() != "u1" {
		t.Fatalf("trimmed too much: %v", u.Object)
	}
	if _, found := u.Object["spec"].(map[string]interface{})["versions"]; found || u.GetAnnotations() != nil {
		t.Fatalf("kept the schema or annotations: %v", u.Object)
	}
}
