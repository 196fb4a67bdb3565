package main

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// loadBalancer gives every Service of type LoadBalancer the node address as its ingress,
// so kube-proxy answers on that address.
type loadBalancer struct {
	client   kubernetes.Interface
	services corelisters.ServiceLister
	address  string
	keys     workqueue.TypedRateLimitingInterface[string]
}

func newLoadBalancer(client kubernetes.Interface, factory informers.SharedInformerFactory, address string) *loadBalancer {
	services := factory.Core().V1().Services()
	c := &loadBalancer{client: client, services: services.Lister(), address: address, keys: newQueue()}
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
	ingress := svc.Status.LoadBalancer.Ingress
	if len(ingress) == 1 && ingress[0].IP == c.address {
		return nil
	}
	updated := svc.DeepCopy()
	mode := corev1.LoadBalancerIPModeVIP
	updated.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: c.address, IPMode: &mode}}
	_, err = c.client.CoreV1().Services(ns).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	return err
}
