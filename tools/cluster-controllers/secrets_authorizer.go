package main

// The kube-apiserver's authorization webhook for the Secrets tempkube keeps to itself.
// RBAC can only grant, and the tenant's role grants Secrets in every namespace (a tenant
// makes namespaces and must use their Secrets at once: helm writes its release Secret
// right after creating the namespace, so a per-namespace RoleBinding written by a
// controller would race it). So the apiserver's AuthorizationConfiguration puts this
// webhook before RBAC, with matchConditions that send it only Secrets requests in
// kube-system or across all namespaces by identities that are not tempkube's own
// (tenant-guards.ts writes them), and failurePolicy Deny: unreachable, it still denies.
// It answers "denied" to those and "no opinion" to anything else it is asked.

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
)

// The identities tempkube runs in a cluster; tenant-guards.ts (isTempkubeIdentity) says why.
var (
	tempkubeUsers  = map[string]bool{"system:kube-controller-manager": true, "system:kube-scheduler": true, "system:kube-proxy": true}
	tempkubeGroups = map[string]bool{"system:masters": true, "system:nodes": true}
)

const tempkubeServiceAccountPrefix = "system:serviceaccount:kube-system:"

func isTempkubeIdentity(user string, groups []string) bool {
	if tempkubeUsers[user] || strings.HasPrefix(user, tempkubeServiceAccountPrefix) {
		return true
	}
	for _, g := range groups {
		if tempkubeGroups[g] {
			return true
		}
	}
	return false
}

// decideSecretsAccess denies what the webhook exists to deny; everything else is left to RBAC.
func decideSecretsAccess(spec authorizationv1.SubjectAccessReviewSpec) authorizationv1.SubjectAccessReviewStatus {
	ra := spec.ResourceAttributes
	if ra == nil || ra.Group != "" || ra.Resource != "secrets" || isTempkubeIdentity(spec.User, spec.Groups) {
		return authorizationv1.SubjectAccessReviewStatus{}
	}
	switch ra.Namespace {
	case "kube-system":
		return authorizationv1.SubjectAccessReviewStatus{Denied: true,
			Reason: "the Secrets of kube-system belong to tempkube"}
	case "":
		return authorizationv1.SubjectAccessReviewStatus{Denied: true,
			Reason: "Secrets are readable per namespace (-n <namespace>), not across all of them: kube-system's belong to tempkube"}
	}
	return authorizationv1.SubjectAccessReviewStatus{}
}

func secretsAuthorizerHandler(w http.ResponseWriter, r *http.Request) {
	var review authorizationv1.SubjectAccessReview
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&review); err != nil {
		http.Error(w, "a SubjectAccessReview is expected: "+err.Error(), http.StatusBadRequest)
		return
	}
	review.Status = decideSecretsAccess(review.Spec)
	if review.Status.Denied {
		log.Printf("secrets-authorizer: denied %s %s/%s to %s", review.Spec.ResourceAttributes.Verb,
			review.Spec.ResourceAttributes.Namespace, review.Spec.ResourceAttributes.Name, review.Spec.User)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(review)
}

// serveSecretsAuthorizer serves the webhook over TLS until ctx ends.
func serveSecretsAuthorizer(ctx context.Context, address, certFile, keyFile string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /authorize", secretsAuthorizerHandler)
	server := &http.Server{Addr: address, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = server.Shutdown(shutdown)
	}()
	if err := server.ListenAndServeTLS(certFile, keyFile); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
