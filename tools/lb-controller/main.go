// tempkube-lb gives every Service of type LoadBalancer the node address as its ingress,
// so kube-proxy answers on that address. One per cluster, beside kube-controller-manager;
// small on purpose (no cloud provider, no leader election: there is one of it).
package main

import (
	"context"
	"flag"
	"log"
	"os/signal"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	address := flag.String("address", "", "node address to publish as the load balancer ingress")
	flag.Parse()
	if *kubeconfig == "" || *address == "" {
		log.Fatal("--kubeconfig and --address are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatalf("kubeconfig: %v", err)
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	factory := informers.NewSharedInformerFactory(client, 10*time.Minute)
	services := factory.Core().V1().Services()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj interface{}) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	services.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj interface{}) { enqueue(obj) },
	})
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	go func() { <-ctx.Done(); queue.ShutDown() }()
	log.Printf("tempkube-lb: publishing %s for LoadBalancer services", *address)

	for {
		key, quit := queue.Get()
		if quit {
			return
		}
		if err := sync(ctx, client, services.Lister(), key, *address); err != nil {
			log.Printf("tempkube-lb: %s: %v", key, err)
			queue.AddRateLimited(key)
		} else {
			queue.Forget(key)
		}
		queue.Done(key)
	}
}

func sync(ctx context.Context, client kubernetes.Interface, lister corelisters.ServiceLister, key, address string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := lister.Services(ns).Get(name)
	if err != nil || svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return nil
	}
	ingress := svc.Status.LoadBalancer.Ingress
	if len(ingress) == 1 && ingress[0].IP == address {
		return nil
	}
	updated := svc.DeepCopy()
	mode := corev1.LoadBalancerIPModeVIP
	updated.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: address, IPMode: &mode}}
	_, err = client.CoreV1().Services(ns).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	return err
}
