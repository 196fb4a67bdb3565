package main

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func TestServiceHostname(t *testing.T) {
	for _, tc := range []struct {
		service, namespace, suffix, want string
	}{
		{"web", "default", "c1.clusters.tempkube.local", "web.default.c1.clusters.tempkube.local"},
		{"web", "default", "", ""},
		// 63 + 63 + a suffix: over the 253 characters of a DNS subdomain, so no hostname at all.
		{strings.Repeat("s", 63), strings.Repeat("n", 63), strings.Repeat("d", 63) + "." + strings.Repeat("e", 63), ""},
	} {
		if got := serviceHostname(tc.service, tc.namespace, tc.suffix); got != tc.want {
			t.Errorf("serviceHostname(%q, %q, %q) = %q; want %q", tc.service, tc.namespace, tc.suffix, got, tc.want)
		}
	}
}

func loadBalancerService(namespace, name string, ingress ...corev1.LoadBalancerIngress) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
		Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: ingress}},
	}
}

// syncOnce runs the controller's sync over one Service and returns the Service as the API then has it.
func syncOnce(t *testing.T, svc *corev1.Service, suffix string) (*corev1.Service, int) {
	t.Helper()
	client := fake.NewSimpleClientset(svc)
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	if err := indexer.Add(svc); err != nil {
		t.Fatal(err)
	}
	c := &loadBalancer{client: client, services: corelisters.NewServiceLister(indexer), address: "172.30.5.2", hostnameSuffix: suffix}
	if err := c.sync(context.Background(), svc.Namespace+"/"+svc.Name); err != nil {
		t.Fatal(err)
	}
	got, err := client.CoreV1().Services(svc.Namespace).Get(context.Background(), svc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	updates := 0
	for _, a := range client.Actions() {
		if a.GetVerb() == "update" && a.GetSubresource() == "status" {
			updates++
		}
	}
	return got, updates
}

func TestSyncWritesAddressAndHostname(t *testing.T) {
	got, updates := syncOnce(t, loadBalancerService("shop", "web"), "c1.clusters.tempkube.local")
	ingress := got.Status.LoadBalancer.Ingress
	if updates != 1 || len(ingress) != 1 {
		t.Fatalf("want one status update with one ingress, got %d updates: %+v", updates, ingress)
	}
	in := ingress[0]
	if in.IP != "172.30.5.2" || in.Hostname != "web.shop.c1.clusters.tempkube.local" ||
		in.IPMode == nil || *in.IPMode != corev1.LoadBalancerIPModeVIP {
		t.Fatalf("ingress = %+v", in)
	}
}

func TestSyncLeavesAnUpToDateServiceAlone(t *testing.T) {
	current := loadBalancerIngress("172.30.5.2", "web.shop.c1.clusters.tempkube.local")
	if _, updates := syncOnce(t, loadBalancerService("shop", "web", current), "c1.clusters.tempkube.local"); updates != 0 {
		t.Fatalf("%d status updates for a Service that already had its ingress", updates)
	}
}

func TestSyncReplacesTheHostnameOfAnotherDomain(t *testing.T) {
	// A cluster started again under another --cluster-domain: the old name goes.
	old := loadBalancerIngress("172.30.5.2", "web.shop.c1.old.example")
	got, updates := syncOnce(t, loadBalancerService("shop", "web", old), "c1.clusters.tempkube.local")
	if updates != 1 || got.Status.LoadBalancer.Ingress[0].Hostname != "web.shop.c1.clusters.tempkube.local" {
		t.Fatalf("%d updates, ingress %+v", updates, got.Status.LoadBalancer.Ingress)
	}
	// One written before hostnames existed (IP only) gets its hostname too.
	got, updates = syncOnce(t, loadBalancerService("shop", "web", loadBalancerIngress("172.30.5.2", "")), "c1.x")
	if updates != 1 || got.Status.LoadBalancer.Ingress[0].Hostname != "web.shop.c1.x" {
		t.Fatalf("%d updates, ingress %+v", updates, got.Status.LoadBalancer.Ingress)
	}
}

func TestSyncIgnoresOtherServiceTypes(t *testing.T) {
	svc := loadBalancerService("shop", "web")
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	if _, updates := syncOnce(t, svc, "c1.x"); updates != 0 {
		t.Fatalf("%d status updates for a ClusterIP Service", updates)
	}
}
