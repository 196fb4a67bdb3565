// cluster-controllers runs tempkube's own controllers of one cluster, beside
// kube-controller-manager with the admin credential: LoadBalancer Services get the node
// address and their name under the tempkube gateway (load_balancer.go), and tenants get rights on the custom resources of their
// CRDs (crd_rights.go); and it serves the apiserver's authorization webhook that keeps
// kube-system's Secrets from tenants (secrets_authorizer.go). Small on purpose: no cloud provider, no leader election (there is
// one process per cluster).
package main

import (
	"context"
	"flag"
	"log"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

const resync = 10 * time.Minute

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster (admin)")
	address := flag.String("address", "", "node address to publish as the load balancer ingress")
	hostnameSuffix := flag.String("hostname-suffix", "", "<cluster id>.<cluster domain>: a LoadBalancer's ingress hostname is <service>.<namespace>.<suffix> (none when empty)")
	authorizerAddress := flag.String("authorizer-address", "", "host:port where the apiserver's authorization webhook is served (TLS)")
	authorizerCert := flag.String("authorizer-cert", "", "serving certificate of the authorization webhook")
	authorizerKey := flag.String("authorizer-key", "", "its key")
	flag.Parse()
	if *kubeconfig == "" || *address == "" || *authorizerAddress == "" || *authorizerCert == "" || *authorizerKey == "" {
		log.Fatal("--kubeconfig, --address, --authorizer-address, --authorizer-cert and --authorizer-key are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatalf("kubeconfig: %v", err)
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Served before the informers sync: until it answers, the apiserver denies what it would ask it.
	go func() {
		if err := serveSecretsAuthorizer(ctx, *authorizerAddress, *authorizerCert, *authorizerKey); err != nil {
			log.Fatalf("secrets-authorizer: %v", err)
		}
	}()

	factory := informers.NewSharedInformerFactory(client, resync)
	dynFactory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, resync)
	controllers := []controller{
		newLoadBalancer(client, factory, *address, *hostnameSuffix),
		newCRDRights(client, factory, dynFactory),
	}
	factory.Start(ctx.Done())
	dynFactory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	dynFactory.WaitForCacheSync(ctx.Done())

	var running sync.WaitGroup
	for _, c := range controllers {
		running.Add(1)
		go func() { defer running.Done(); runWorker(ctx, c) }()
	}
	running.Wait()
}

// controller is one reconciler: a queue of keys and what to do for each key.
type controller interface {
	name() string
	queue() workqueue.TypedRateLimitingInterface[string]
	sync(ctx context.Context, key string) error
}

// runWorker drains the controller's queue until ctx ends, retrying failed keys with backoff.
func runWorker(ctx context.Context, c controller) {
	queue := c.queue()
	go func() { <-ctx.Done(); queue.ShutDown() }()
	log.Printf("%s: started", c.name())
	for {
		key, quit := queue.Get()
		if quit {
			return
		}
		if err := c.sync(ctx, key); err != nil {
			log.Printf("%s: %s: %v", c.name(), key, err)
			queue.AddRateLimited(key)
		} else {
			queue.Forget(key)
		}
		queue.Done(key)
	}
}

func newQueue() workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
}
