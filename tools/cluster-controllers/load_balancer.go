package main

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// loadBalancer gives every Service of type LoadBalancer the node address as its ingress,
// so kube-proxy answers on that address, and the name the tempkube gateway routes HTTP by
// (<service>.<namespace>.<hostnameSuffix>), so other machines reach it through the gateway.
type loadBalancer struct {
	client         kubernetes.Interface
	services       corelisters.ServiceLister
	address        string
	hostnameSuffix string
	keys           workqueue.TypedRateLimitingInterface[string]
}

func newLoadBalancer(client kubernetes.Interface, factory informers.SharedInformerFactory, address, hostnameSuffix string) *loadBalancer {
	services := factory.Core().V1().Services()
	c := &loadBalancer{
		client: client, services: services.Lister(), address: address, hostnameSuffix: hostnameSuffix, keys: newQueue(),
	}
	enqueue := func(obj interface{}) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			c.keys.Add(key)
		}
	}
	services.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj interface{}) { enqueue(obj) },
	})
	return c
}

func (c *loadBalancer) name() string { return "load-balancer (" + c.address + ")" }

func (c *loadBalancer) queue() workqueue.TypedRateLimitingInterface[string] { return c.keys }

func (c *loadBalancer) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := c.services.Services(ns).Get(name)
	if err != nil || svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return nil
	}
	want := loadBalancerIngress(c.address, serviceHostname(name, ns, c.hostnameSuffix))
	ingress := svc.Status.LoadBalancer.Ingress
	if len(ingress) == 1 && sameIngress(ingress[0], want) {
		return nil
	}
	updated := svc.DeepCopy()
	updated.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{want}
	_, err = c.client.CoreV1().Services(ns).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	return err
}

// serviceHostname is the Service's name under the gateway (gateway-files.ts serviceHostname),
// or "" with no suffix or when the name is no valid DNS subdomain (a Service and namespace of
// 63 characters each can pass the 253 an ingress hostname may have): the apiserver would
// refuse the whole status (ValidateLoadBalancerStatus), and the IP alone still serves.
func serviceHostname(service, namespace, suffix string) string {
	if suffix == "" {
		return ""
	}
	hostname := service + "." + namespace + "." + suffix
	if len(validation.IsDNS1123Subdomain(hostname)) > 0 {
		return ""
	}
	return hostname
}

// loadBalancerIngress is one entry with both the IP and the hostname. kube-proxy programs
// an ingress IP whatever else the entry has, as long as its ipMode is VIP (pkg/proxy/serviceport.go,
// newBaseServiceInfo, and proxyutil.IsVIPMode); the hostname is for people and the gateway.
func loadBalancerIngress(address, hostname string) corev1.LoadBalancerIngress {
	mode := corev1.LoadBalancerIPModeVIP
	return corev1.LoadBalancerIngress{IP: address, Hostname: hostname, IPMode: &mode}
}

func sameIngress(a, b corev1.LoadBalancerIngress) bool {
	return a.IP == b.IP && a.Hostname == b.Hostname && a.IPMode != nil && b.IPMode != nil && *a.IPMode == *b.IPMode &&
		len(a.Ports) == 0
}
