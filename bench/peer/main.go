// SPDX-License-Identifier: Apache-2.0
//
// bench-peer: the benchmark peer of the TypeScript provisioner. A Datera flexVolume provisioner
// written the way most external provisioners are, on sigs.k8s.io/sig-storage-lib-external-provisioner:
// the library owns the watches, the work queues, the PV save and the events; this file only
// talks to Datera (the simulator) and builds the PV.
//
// What it does per volume, to match lib/provision (same simulator calls, same PV):
//   - Provision: POST /v2.2/app_instances {name: pvc-<uid>, storage_instances storage-1/volume-1},
//     then PUT /v2.2/app_instances/<name>/metadata with the ownership keys. A 409 on the POST is
//     adopted only when the metadata is empty or names this claim (no duplicate, no foreign reuse).
//   - Delete: PUT admin_state offline (force), then DELETE; 404 at either step means gone.
//   - Session: PUT /v2.2/login once, shared by all workers, and a single re-login on 401.
//   - 503 answers (the cluster said it did nothing) are retried a few times in-process; every
//     other failure goes back to the library, which retries with its own backoff.
//
// Leader election is off; the PV carries the library's claimRef, storageClassName,
// provisioned-by annotation and (AddFinalizer) the provisioner finalizer.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/time/rate"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

const (
	flexDriver      = "datera/iscsi"
	storageInstance = "storage-1"
	volumeName      = "volume-1"
	annAppInstance  = "datera.io/app-instance"
)

// dateraError is a non-2xx answer of the Datera API.
type dateraError struct {
	op     string
	status int
	body   string
}

func (e *dateraError) Error() string {
	return fmt.Sprintf("datera %s: HTTP %d: %s", e.op, e.status, e.body)
}

func statusOf(err error) int {
	var de *dateraError
	if errors.As(err, &de) {
		return de.status
	}
	return 0
}

// datera is a minimal client of the Datera REST API v2.2: one session key shared by all callers.
type datera struct {
	base     string // e.g. http://127.0.0.1:7717/v2.2
	user     string
	password string
	tenant   string
	hc       *http.Client

	mu  sync.Mutex
	key string
	gen int // bumped on every login, so concurrent 401s cause one re-login
}

func (d *datera) session(ctx context.Context, stale int) (string, int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.key != "" && d.gen != stale {
		return d.key, d.gen, nil
	}
	body, _ := json.Marshal(map[string]string{"name": d.user, "password": d.password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, d.base+"/login", bytes.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.hc.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", 0, &dateraError{op: "PUT /login", status: resp.StatusCode, body: truncate(raw)}
	}
	var out struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Key == "" {
		return "", 0, fmt.Errorf("datera login: no session key in the reply")
	}
	d.key = out.Key
	d.gen++
	return d.key, d.gen, nil
}

// call sends one request; it logs in first when needed, logs in again once on 401, and retries
// 503 (nothing was done) up to 4 times with a short backoff. out, when not nil, receives "data".
func (d *datera) call(ctx context.Context, method, path string, body any, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	op := method + " " + path
	gen := -1
	relogged := false
	for attempt := 0; ; attempt++ {
		key, g, err := d.session(ctx, gen)
		if err != nil {
			if statusOf(err) == http.StatusServiceUnavailable && attempt < 4 {
				if err := sleep(ctx, backoff(attempt)); err != nil {
					return err
				}
				continue
			}
			return err
		}
		gen = g
		req, err := http.NewRequestWithContext(ctx, method, d.base+path, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Auth-Token", key)
		req.Header.Set("tenant", d.tenant)
		resp, err := d.hc.Do(req)
		if err != nil {
			return fmt.Errorf("datera %s: %w", op, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusUnauthorized && !relogged:
			relogged = true // the session expired: log in again (once per call) and repeat
			continue
		case resp.StatusCode == http.StatusServiceUnavailable && attempt < 4:
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return err
			}
			continue
		case resp.StatusCode >= 300:
			return &dateraError{op: op, status: resp.StatusCode, body: truncate(raw)}
		}
		if out != nil {
			var env struct {
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(raw, &env); err != nil {
				return fmt.Errorf("datera %s: bad reply: %w", op, err)
			}
			if err := json.Unmarshal(env.Data, out); err != nil {
				return fmt.Errorf("datera %s: bad data: %w", op, err)
			}
		}
		return nil
	}
}

func backoff(attempt int) time.Duration { return time.Duration(50<<attempt) * time.Millisecond }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func truncate(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// peer implements controller.Provisioner.
type peer struct {
	name       string
	dat        *datera
	endpoint   string
	secretName string
	secretNS   string
}

func (p *peer) ownership(o controller.ProvisionOptions) map[string]string {
	return map[string]string{
		"k8s-provisioner":     p.name,
		"k8s-pv":              o.PVName,
		"k8s-claim-namespace": o.PVC.Namespace,
		"k8s-claim-name":      o.PVC.Name,
		"k8s-claim-uid":       string(o.PVC.UID),
		"k8s-storage-class":   o.StorageClass.Name,
	}
}

func (p *peer) Provision(ctx context.Context, o controller.ProvisionOptions) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	q := o.PVC.Spec.Resources.Requests[v1.ResourceStorage]
	gib := (q.Value() + (1<<30 - 1)) >> 30
	if gib < 1 {
		gib = 1
	}
	replicas := 3
	if s := o.StorageClass.Parameters["replica"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 5 {
			return nil, controller.ProvisioningFinished, fmt.Errorf("invalid parameter replica=%q", s)
		}
		replicas = n
	}
	fsType := o.StorageClass.Parameters["fsType"]
	if fsType == "" {
		fsType = "xfs"
	}
	body := map[string]any{
		"name":        o.PVName, // pvc-<uid>: deterministic, so a repeated attempt finds its own volume
		"create_mode": "kubernetes",
		"storage_instances": []any{map[string]any{
			"name":    storageInstance,
			"volumes": []any{map[string]any{"name": volumeName, "size": gib, "replica_count": replicas}},
		}},
	}
	md := p.ownership(o)
	aiPath := "/app_instances/" + url.PathEscape(o.PVName)
	err := p.dat.call(ctx, http.MethodPost, "/app_instances", body, nil)
	switch {
	case err == nil:
	case statusOf(err) == http.StatusConflict:
		// The name exists: an earlier attempt of ours (empty metadata or this claim's uid), or not ours.
		existing := map[string]any{}
		if err := p.dat.call(ctx, http.MethodGet, aiPath+"/metadata", nil, &existing); err != nil {
			return nil, controller.ProvisioningInBackground, err
		}
		if uid, _ := existing["k8s-claim-uid"].(string); uid != "" && uid != string(o.PVC.UID) {
			return nil, controller.ProvisioningFinished, fmt.Errorf("app instance %s exists and belongs to claim uid %s", o.PVName, uid)
		}
	case statusOf(err) >= 400 && statusOf(err) < 500:
		return nil, controller.ProvisioningFinished, err
	default:
		// 5xx or a lost response: the volume may exist; the library retries, the 409 path adopts it.
		return nil, controller.ProvisioningInBackground, err
	}
	if err := p.dat.call(ctx, http.MethodPut, aiPath+"/metadata", md, nil); err != nil {
		return nil, controller.ProvisioningInBackground, err
	}

	reclaim := v1.PersistentVolumeReclaimDelete
	if o.StorageClass.ReclaimPolicy != nil {
		reclaim = *o.StorageClass.ReclaimPolicy
	}
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: o.PVName, Annotations: map[string]string{annAppInstance: o.PVName}},
		Spec: v1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: reclaim,
			AccessModes:                   o.PVC.Spec.AccessModes,
			VolumeMode:                    ptr(v1.PersistentVolumeFilesystem),
			Capacity:                      v1.ResourceList{v1.ResourceStorage: *resource.NewQuantity(gib<<30, resource.BinarySI)},
			PersistentVolumeSource: v1.PersistentVolumeSource{FlexVolume: &v1.FlexPersistentVolumeSource{
				Driver:    flexDriver,
				FSType:    fsType,
				SecretRef: &v1.SecretReference{Name: p.secretName, Namespace: p.secretNS},
				Options: map[string]string{
					"volumeID":        o.PVName,
					"size":            strconv.FormatInt(gib, 10),
					"replica":         strconv.Itoa(replicas),
					"backstoreServer": p.endpoint,
					"tenant":          p.dat.tenant,
					"storageInstance": storageInstance,
					"volume":          volumeName,
				},
			}},
		},
	}, controller.ProvisioningFinished, nil
}

func (p *peer) Delete(ctx context.Context, pv *v1.PersistentVolume) error {
	if pv.Spec.FlexVolume == nil || pv.Spec.FlexVolume.Driver != flexDriver {
		return &controller.IgnoredError{Reason: "not a datera/iscsi flexVolume"}
	}
	ai := pv.Spec.FlexVolume.Options["volumeID"]
	if ai == "" {
		ai = pv.Name
	}
	path := "/app_instances/" + url.PathEscape(ai)
	if err := p.dat.call(ctx, http.MethodPut, path, map[string]any{"admin_state": "offline", "force": true}, nil); err != nil {
		if statusOf(err) == http.StatusNotFound {
			return nil
		}
		return err
	}
	if err := p.dat.call(ctx, http.MethodDelete, path, map[string]any{"force": true}, nil); err != nil && statusOf(err) != http.StatusNotFound {
		return err
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	name := flag.String("provisioner", "datera.io/provisioner-datera", "StorageClass.provisioner to serve")
	endpoint := flag.String("endpoint", "http://127.0.0.1:7717", "Datera management URL (the simulator)")
	user := flag.String("user", os.Getenv("DAT_USER"), "Datera user (default $DAT_USER)")
	password := flag.String("password", "", "Datera password (default $DAT_PASS)")
	tenant := flag.String("tenant", "/root", "Datera tenant")
	namespace := flag.String("namespace", "default", "namespace of the credentials Secret named in each PV")
	qps := flag.Float64("kube-api-qps", 0, "client-go QPS; 0 keeps client-go's default (5)")
	burst := flag.Int("kube-api-burst", 0, "client-go burst; 0 keeps client-go's default (10)")
	threads := flag.Int("threadiness", controller.DefaultThreadiness, "claim and volume workers (library default 4)")
	pvLimiterQPS := flag.Float64("pv-save-qps", 0, "> 0: save PVs in the background (CreateProvisionedPVLimiter) at this rate")
	datConns := flag.Int("datera-connections", 64, "idle keep-alive connections kept to Datera")
	protobuf := flag.Bool("protobuf", false, "talk protobuf to the API server for core types (as external-provisioner does); default JSON")
	retryStart := flag.Duration("retry-interval-start", 0, "> 0: claim and volume queues retry failures after this, doubling up to --retry-interval-max (external-provisioner: 1s); 0 keeps the library's limiter")
	retryMax := flag.Duration("retry-interval-max", 5*time.Minute, "longest retry interval with --retry-interval-start (external-provisioner: 5m)")
	failedThreshold := flag.Int("failed-threshold", -1, ">= 0: FailedProvisionThreshold and FailedDeleteThreshold (0 = retry forever, as external-provisioner); -1 keeps the library's 15")
	klog.InitFlags(nil)
	flag.Parse()
	if *password == "" {
		*password = os.Getenv("DAT_PASS")
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.Fatal(err)
	}
	if *qps != 0 {
		cfg.QPS = float32(*qps)
	}
	if *burst != 0 {
		cfg.Burst = *burst
	}
	cfg.UserAgent = "datera-bench-peer"
	if *protobuf {
		cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
		cfg.ContentType = "application/vnd.kubernetes.protobuf"
	}
	cs := kubernetes.NewForConfigOrDie(cfg)

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = *datConns
	transport.MaxIdleConnsPerHost = *datConns // Go's default of 2 would reconnect constantly under load
	transport.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	dat := &datera{
		base:     strings.TrimRight(*endpoint, "/") + "/v2.2",
		user:     *user,
		password: *password,
		tenant:   *tenant,
		hc:       &http.Client{Timeout: 30 * time.Second, Transport: transport},
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := []func(*controller.ProvisionController) error{
		controller.LeaderElection(false),
		controller.Threadiness(*threads),
		controller.AddFinalizer(true),
	}
	if *retryStart > 0 {
		opts = append(opts, controller.RateLimiter(workqueue.NewTypedItemExponentialFailureRateLimiter[string](*retryStart, *retryMax)))
	}
	if *failedThreshold >= 0 {
		opts = append(opts, controller.FailedProvisionThreshold(*failedThreshold), controller.FailedDeleteThreshold(*failedThreshold))
	}
	if *pvLimiterQPS > 0 {
		opts = append(opts, controller.CreateProvisionedPVLimiter(workqueue.NewTypedMaxOfRateLimiter(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 10*time.Second),
			&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(*pvLimiterQPS), int(*pvLimiterQPS)*2)},
		)))
	}
	p := &peer{name: *name, dat: dat, endpoint: *endpoint, secretName: "datera-credentials", secretNS: *namespace}
	pc := controller.NewProvisionController(ctx, cs, *name, p, opts...)
	klog.InfoS("bench-peer running", "provisioner", *name, "qps", cfg.QPS, "burst", cfg.Burst, "threadiness", *threads, "pvSaveQPS", *pvLimiterQPS,
		"contentType", cfg.ContentType, "retryIntervalStart", *retryStart, "retryIntervalMax", *retryMax, "failedThreshold", *failedThreshold)
	pc.Run(ctx)
}
