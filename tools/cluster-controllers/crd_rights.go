package main

import (
	"context"
	"fmt"
	"log"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Tenants may create CRDs, but RBAC cannot grant "every API group except the built-in
// ones", so this controller gives each established CRD a ClusterRole on its resources,
// aggregated into tempkube:tenant-custom-resources (addon-manifests.ts) and owned by the
// CRD, so the garbage collector removes it with the CRD.
//
// A tenant can name a CRD after a built-in resource (validatingadmissionpolicies.
// admissionregistration.k8s.io, with the api-approved annotation): the apiserver accepts
// it, keeps serving its own resource, and a role on that name would let tenants delete the
// admission guards. So a group is granted only while every APIService of the group was
// made for CRDs (kube-aggregator.kubernetes.io/automanaged=true); built-in groups carry
// "onstart", aggregated APIs no label. Tenants can only read APIServices, and the
// aggregator never relabels an APIService that exists.
const (
	crdRoleLabel      = "tempkube.dev/aggregate-to-tenant-custom-resources"
	crdRolePrefix     = "tempkube:tenant:crd:"
	automanagedLabel  = "kube-aggregator.kubernetes.io/automanaged"
	automanagedForCRD = "true"
	groupIndex        = "group"
)

var (
	crdResource        = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	apiServiceResource = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	tenantVerbs        = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
)

// apiService is what the grant decision needs of an APIService.
type apiService struct {
	name, group, automanaged string
}

// grantable says whether tenants may get rights on a CRD's resources in group, given the
// cluster's APIServices. refusal names what else serves the group; it is empty when the
// group is grantable or merely waits for its APIService.
func grantable(group string, services []apiService) (ok bool, refusal string) {
	found := false
	for _, s := range services {
		if s.group != group {
			continue
		}
		found = true
		switch s.automanaged {
		case automanagedForCRD:
		case "":
			return false, fmt.Sprintf("APIService %s is an aggregated API", s.name)
		default:
			return false, fmt.Sprintf("APIService %s is served by kube-apiserver itself (%s=%s)", s.name, automanagedLabel, s.automanaged)
		}
	}
	return found, ""
}

type crdRights struct {
	client      kubernetes.Interface
	crds        cache.SharedIndexInformer
	apiServices cache.SharedIndexInformer
	roles       rbaclisters.ClusterRoleLister
	keys        workqueue.TypedRateLimitingInterface[string]
	// Last refusal logged per CRD, so a resync does not repeat it.
	refused map[string]string
}

func newCRDRights(client kubernetes.Interface, factory informers.SharedInformerFactory, dynFactory dynamicinformer.DynamicSharedInformerFactory) *crdRights {
	roles := factory.Rbac().V1().ClusterRoles()
	c := &crdRights{
		client:      client,
		crds:        dynFactory.ForResource(crdResource).Informer(),
		apiServices: dynFactory.ForResource(apiServiceResource).Informer(),
		roles:       roles.Lister(),
		keys:        newQueue(),
		refused:     map[string]string{},
	}
	byGroup := cache.Indexers{groupIndex: func(obj interface{}) ([]string, error) {
		return []string{specGroup(obj)}, nil
	}}
	for _, inf := range []cache.SharedIndexInformer{c.crds, c.apiServices} {
		must(inf.SetTransform(trim))
		must(inf.AddIndexers(byGroup))
	}

	enqueueCRD := func(obj interface{}) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.keys.Add(key)
		}
	}
	// An APIService that appears, changes or goes decides for every CRD of its group.
	enqueueGroup := func(obj interface{}) {
		crds, _ := c.crds.GetIndexer().ByIndex(groupIndex, specGroup(obj))
		for _, crd := range crds {
			enqueueCRD(crd)
		}
	}
	// Its own roles too: one deleted by hand comes back, one whose CRD went is removed.
	enqueueRole := func(obj interface{}) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if role, ok := obj.(*rbacv1.ClusterRole); ok && strings.HasPrefix(role.Name, crdRolePrefix) {
			c.keys.Add(strings.TrimPrefix(role.Name, crdRolePrefix))
		}
	}
	must2(c.crds.AddEventHandler(handlers(enqueueCRD)))
	must2(c.apiServices.AddEventHandler(handlers(enqueueGroup)))
	must2(roles.Informer().AddEventHandler(handlers(enqueueRole)))
	return c
}

func (c *crdRights) name() string { return "tenant-crd-rights" }

func (c *crdRights) queue() workqueue.TypedRateLimitingInterface[string] { return c.keys }

func (c *crdRights) sync(ctx context.Context, crdName string) error {
	roleName := crdRolePrefix + crdName
	want, err := c.desired(crdName)
	if err != nil {
		return err
	}
	current, err := c.roles.Get(roleName)
	if apierrors.IsNotFound(err) {
		current = nil
	} else if err != nil {
		return err
	}

	switch {
	case want == nil && current == nil:
		return nil
	case want == nil:
		if current.Labels[crdRoleLabel] != "true" {
			return nil // not one of ours
		}
		err := c.client.RbacV1().ClusterRoles().Delete(ctx, roleName, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(current.UID))})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // gone or changed meanwhile: the informer brings the key back
		}
		if err == nil {
			log.Printf("%s: revoked tenant rights on %s", c.name(), crdName)
		}
		return err
	case current == nil:
		_, err := c.client.RbacV1().ClusterRoles().Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		if err == nil {
			log.Printf("%s: granted tenants %s", c.name(), crdName)
		}
		return err
	case current.Labels[crdRoleLabel] == "true" && equality.Semantic.DeepEqual(current.OwnerReferences, want.OwnerReferences) &&
		equality.Semantic.DeepEqual(current.Rules, want.Rules) && current.AggregationRule == nil:
		return nil
	default:
		updated := current.DeepCopy()
		if updated.Labels == nil {
			updated.Labels = map[string]string{}
		}
		updated.Labels[crdRoleLabel] = "true"
		updated.OwnerReferences = want.OwnerReferences
		updated.Rules = want.Rules
		updated.AggregationRule = nil
		_, err := c.client.RbacV1().ClusterRoles().Update(ctx, updated, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	}
}

// desired is the ClusterRole the CRD should have, or nil when tenants get no rights on it:
// it is gone, not established yet, being deleted, or its group is served by something else.
func (c *crdRights) desired(crdName string) (*rbacv1.ClusterRole, error) {
	obj, exists, err := c.crds.GetIndexer().GetByKey(crdName)
	if err != nil || !exists {
		delete(c.refused, crdName)
		return nil, err
	}
	crd := obj.(*unstructured.Unstructured)
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	if crd.GetDeletionTimestamp() != nil || !established(crd) || group == "" || plural == "" {
		return nil, nil
	}
	var services []apiService
	objs, err := c.apiServices.GetIndexer().ByIndex(groupIndex, group)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		s := o.(*unstructured.Unstructured)
		services = append(services, apiService{name: s.GetName(), group: group, automanaged: s.GetLabels()[automanagedLabel]})
	}
	ok, refusal := grantable(group, services)
	if refusal != "" && c.refused[crdName] != refusal {
		log.Printf("%s: not granting tenants %s: %s", c.name(), crdName, refusal)
	}
	if refusal == "" {
		delete(c.refused, crdName)
	} else {
		c.refused[crdName] = refusal
	}
	if !ok {
		return nil, nil
	}
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{
			Name:   crdRolePrefix + crdName,
			Labels: map[string]string{crdRoleLabel: "true"},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition", Name: crdName, UID: crd.GetUID(),
			}},
		},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{group},
			Resources: []string{plural, plural + "/status", plural + "/scale"},
			Verbs:     tenantVerbs,
		}},
	}, nil
}

func established(crd *unstructured.Unstructured) bool {
	conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conditions {
		if m, ok := c.(map[string]interface{}); ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

func specGroup(obj interface{}) string {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
		return group
	}
	return ""
}

// trim keeps of a CRD or APIService only what the decision reads: CRDs carry their whole
// schemas, and there is one such process per cluster on the host. Idempotent.
func trim(obj interface{}) (interface{}, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	out := &unstructured.Unstructured{Object: map[string]interface{}{}}
	out.SetAPIVersion(u.GetAPIVersion())
	out.SetKind(u.GetKind())
	out.SetName(u.GetName())
	out.SetUID(u.GetUID())
	out.SetResourceVersion(u.GetResourceVersion())
	out.SetLabels(u.GetLabels())
	out.SetDeletionTimestamp(u.GetDeletionTimestamp())
	for _, path := range [][]string{{"spec", "group"}, {"spec", "names", "plural"}, {"status", "conditions"}} {
		if v, found, _ := unstructured.NestedFieldNoCopy(u.Object, path...); found {
			if err := unstructured.SetNestedField(out.Object, v, path...); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func handlers(enqueue func(interface{})) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj interface{}) { enqueue(obj) },
		DeleteFunc: enqueue,
	}
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func must2[T any](_ T, err error) { must(err) }
