package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
)

func TestDecideSecretsAccess(t *testing.T) {
	secrets := func(ns, verb string) *authorizationv1.ResourceAttributes {
		return &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Resource: "secrets"}
	}
	for _, tc := range []struct {
		name   string
		spec   authorizationv1.SubjectAccessReviewSpec
		denied bool
	}{
		{"tenant reads kube-system", authorizationv1.SubjectAccessReviewSpec{User: "tenant", Groups: []string{"tenants"}, ResourceAttributes: secrets("kube-system", "get")}, true},
		{"tenant lists all namespaces", authorizationv1.SubjectAccessReviewSpec{User: "tenant", Groups: []string{"tenants"}, ResourceAttributes: secrets("", "list")}, true},
		{"tenant's own account", authorizationv1.SubjectAccessReviewSpec{User: "system:serviceaccount:default:ci", Groups: []string{"system:serviceaccounts"}, ResourceAttributes: secrets("kube-system", "watch")}, true},
		{"tenant reads its namespace", authorizationv1.SubjectAccessReviewSpec{User: "tenant", Groups: []string{"tenants"}, ResourceAttributes: secrets("default", "get")}, false},
		{"tenant reads kube-system ConfigMaps", authorizationv1.SubjectAccessReviewSpec{User: "tenant", ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "kube-system", Verb: "get", Resource: "configmaps"}}, false},
		{"a CRD named secrets in another group", authorizationv1.SubjectAccessReviewSpec{User: "tenant", ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "kube-system", Verb: "get", Group: "example.com", Resource: "secrets"}}, false},
		{"controller account", authorizationv1.SubjectAccessReviewSpec{User: "system:serviceaccount:kube-system:namespace-controller", ResourceAttributes: secrets("", "list")}, false},
		{"admin", authorizationv1.SubjectAccessReviewSpec{User: "tempkube-admin", Groups: []string{"system:masters"}, ResourceAttributes: secrets("kube-system", "get")}, false},
		{"kubelet", authorizationv1.SubjectAccessReviewSpec{User: "system:node:n", Groups: []string{"system:nodes"}, ResourceAttributes: secrets("kube-system", "get")}, false},
		{"non-resource request", authorizationv1.SubjectAccessReviewSpec{User: "tenant", NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/healthz", Verb: "get"}}, false},
	} {
		got := decideSecretsAccess(tc.spec)
		if got.Denied != tc.denied || got.Allowed || (got.Denied && got.Reason == "") {
			t.Errorf("%s: got %+v, want denied=%v with a reason", tc.name, got, tc.denied)
		}
	}
}

func TestSecretsAuthorizerHandler(t *testing.T) {
	body, _ := json.Marshal(authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: "tenant", ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "kube-system", Verb: "get", Resource: "secrets"}}})
	rec := httptest.NewRecorder()
	secretsAuthorizerHandler(rec, httptest.NewRequest(http.MethodPost, "/authorize", bytes.NewReader(body)))
	var review authorizationv1.SubjectAccessReview
	if err := json.NewDecoder(rec.Body).Decode(&review); err != nil || !review.Status.Denied {
		t.Fatalf("answer %d %v: %+v", rec.Code, err, review.Status)
	}
	rec = httptest.NewRecorder()
	secretsAuthorizerHandler(rec, httptest.NewRequest(http.MethodPost, "/authorize", bytes.NewReader([]byte("not json"))))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("bad body answered %d", rec.Code)
	}
}
