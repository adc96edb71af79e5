package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// k8sVersion is stamped by the build (-X main.k8sVersion=v1.34.4).
var k8sVersion = "unknown"

func buildVersion() string { return "testplane " + k8sVersion }

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// defaultControllers are the kube-controller-manager controllers a storage provisioner meets
// in a real cluster: the PV binder that annotates and binds claims, the two protection
// controllers (StorageObjectInUseProtection admission stays on), StatefulSets for
// volumeClaimTemplates, and the garbage collector and namespace controller for clean-up.
var defaultControllers = []string{
	"persistentvolume-binder-controller",
	"persistentvolumeclaim-protection-controller",
	"persistentvolume-protection-controller",
	"statefulset-controller",
	"garbage-collector-controller",
	"namespace-controller",
}

// inClusterControllers are added for --in-cluster-clients: what running pods of Deployments
// and DaemonSets with ServiceAccounts needs, as on any cluster.
var inClusterControllers = []string{
	"serviceaccount-controller",
	"root-ca-certificate-publisher-controller",
	"deployment-controller",
	"replicaset-controller",
	"daemonset-controller",
	"endpoints-controller",
	"endpointslice-controller",
	"node-lifecycle-controller", // lifts the not-ready taint kubelet registers nodes with
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// component is one supervised child process.
type component struct {
	name string
	args []string
	dir  string

	// newNS: run as `testplane node` in new mount and PID namespaces (a local node).
	newNS bool

	mu  sync.Mutex
	cmd *exec.Cmd
}

// up starts etcd, kube-apiserver and kube-controller-manager on loopback, writes a kubeconfig
// into --dir, prints one JSON line describing the plane, and runs until SIGTERM/SIGINT.
// SIGUSR1 restarts kube-apiserver in place (same port, same etcd), for fault tests.
func up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	dir := fs.String("dir", "", "state directory (default: a new temporary directory)")
	apiPort := fs.Int("port", 0, "kube-apiserver secure port on 127.0.0.1 (0: any free port)")
	controllers := fs.String("controllers", strings.Join(defaultControllers, ","), "kube-controller-manager --controllers")
	kcmQPS := fs.Int("kcm-qps", 20, "kube-controller-manager --kube-api-qps (upstream default 20)")
	kcmBurst := fs.Int("kcm-burst", 30, "kube-controller-manager --kube-api-burst (upstream default 30)")
	pvSync := fs.Duration("pv-sync-period", 15*time.Second, "kube-controller-manager --pvclaimbinder-sync-period")
	etcdMem := fs.Bool("etcd-in-memory", true, "keep etcd's data under /dev/shm when it exists")
	timeout := fs.Duration("timeout", 3*time.Minute, "how long to wait for each component to become ready")
	bindAddr := fs.String("bind-address", "127.0.0.1", "address kube-apiserver listens on and advertises (an address of this machine that is not on an external interface)")
	inCluster := fs.Bool("in-cluster-clients", false, "serve pods: ServiceAccount admission, the kubernetes Service's endpoints, a CA published as kube-root-ca.crt, and the workload controllers (Deployments, DaemonSets)")
	withScheduler := fs.Bool("scheduler", false, "also run kube-scheduler")
	nodes := fs.Int("nodes", 0, "local nodes to run (containerd + kubelet each, see node.go); needs root")
	nodeImages := fs.String("node-images", "", "comma-separated image archives every node imports")
	nodePath := fs.String("node-path", "", "directory put first in every kubelet's PATH")
	withProxy := fs.Bool("kube-proxy", false, "run kube-proxy (iptables) for the nodes' shared network namespace")
	clusterCIDR := fs.String("cluster-cidr", "10.244.0.0/16", "pod range of all nodes; node i gets 10.244.i.0/24 of it")
	var apiExtra, kcmExtra, etcdExtra multiFlag
	fs.Var(&apiExtra, "apiserver-arg", "extra kube-apiserver flag (repeatable)")
	fs.Var(&kcmExtra, "kcm-arg", "extra kube-controller-manager flag (repeatable)")
	fs.Var(&etcdExtra, "etcd-arg", "extra etcd flag (repeatable)")
	_ = fs.Parse(args)

	if *dir == "" {
		d, err := os.MkdirTemp("", "testplane-")
		if err != nil {
			return err
		}
		*dir = d
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	*dir = abs
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// etcd: its own process, data on tmpfs when possible (test data only, no fsync).
	etcdData := filepath.Join(*dir, "etcd")
	if *etcdMem {
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			etcdData = filepath.Join("/dev/shm", "testplane-etcd-"+randHex(6))
		}
	}
	defer os.RemoveAll(etcdData)
	clientPort, peerPort := freePort(), freePort()
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	etcd := &component{name: "etcd", dir: *dir, args: append([]string{
		"--name=testplane", "--data-dir=" + etcdData,
		"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=testplane=" + peerURL,
		"--unsafe-no-fsync=true", "--log-level=warn",
		"--quota-backend-bytes=8589934592",
		"--listen-metrics-urls=",
	}, etcdExtra...)}
	if err := etcd.start(); err != nil {
		return err
	}
	defer etcd.stop()
	if err := waitHTTP(ctx, etcdURL+"/health", "", *timeout); err != nil {
		return fmt.Errorf("etcd: %w (log: %s)", err, etcd.logPath())
	}

	// Credentials: a static admin token (system:masters) and a service-account signing key,
	// so that TokenRequest works and tests can act as the provisioner's ServiceAccount.
	token := randHex(24)
	tokens := filepath.Join(*dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+`,admin,admin-uid,"system:masters"`+"\n"), 0o600); err != nil {
		return err
	}
	saKey := filepath.Join(*dir, "sa.key")
	if err := writeECKey(saKey); err != nil {
		return err
	}
	if *apiPort == 0 {
		*apiPort = freePort()
	}
	server := fmt.Sprintf("https://%s", net.JoinHostPort(*bindAddr, strconv.Itoa(*apiPort)))
	apiArgs := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=" + *bindAddr, "--advertise-address=" + *bindAddr,
		"--secure-port=" + strconv.Itoa(*apiPort),
		"--cert-dir=" + filepath.Join(*dir, "pki"),
		"--token-auth-file=" + tokens,
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + saKey,
		"--service-account-signing-key-file=" + saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		"--v=1",
	}
	var caFile string
	if *inCluster {
		// Pods verify the API server through the kubernetes Service (10.0.0.1) with the CA that
		// kube-controller-manager publishes as kube-root-ca.crt: sign a serving certificate for
		// every name they use, and let the API server keep the Service's endpoints itself.
		pki := filepath.Join(*dir, "pki")
		crt, key, ca, err := writeServingCert(pki, *bindAddr)
		if err != nil {
			return err
		}
		caFile = ca
		apiArgs = append(apiArgs, "--tls-cert-file="+crt, "--tls-private-key-file="+key, "--endpoint-reconciler-type=lease",
			// Local nodes share one address and are told apart by kubelet port; their names do not resolve.
			"--kubelet-preferred-address-types=InternalIP")
	} else {
		apiArgs = append(apiArgs, "--endpoint-reconciler-type=none", "--disable-admission-plugins=ServiceAccount")
	}
	api := &component{name: "kube-apiserver", dir: *dir, args: append(apiArgs, apiExtra...)}
	if err := api.start(); err != nil {
		return err
	}
	defer api.stop()
	if err := waitHTTP(ctx, server+"/readyz", token, *timeout); err != nil {
		return fmt.Errorf("kube-apiserver: %w (log: %s)", err, api.logPath())
	}
	if err := waitHTTP(ctx, server+"/api/v1/namespaces/default", token, *timeout); err != nil {
		return fmt.Errorf("kube-apiserver: default namespace: %w", err)
	}

	kubeconfig := filepath.Join(*dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, server, token); err != nil {
		return err
	}

	kcmPort := freePort()
	if *inCluster {
		ctrl := strings.Split(*controllers, ",")
		for _, c := range inClusterControllers {
			if !contains(ctrl, c) {
				ctrl = append(ctrl, c)
			}
		}
		*controllers = strings.Join(ctrl, ",")
		kcmExtra = append(multiFlag{"--root-ca-file=" + caFile}, kcmExtra...)
	}
	kcm := &component{name: "kube-controller-manager", dir: *dir, args: append([]string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--controllers=" + *controllers,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(kcmPort),
		"--cert-dir=" + filepath.Join(*dir, "kcm-pki"),
		"--kube-api-qps=" + strconv.Itoa(*kcmQPS),
		"--kube-api-burst=" + strconv.Itoa(*kcmBurst),
		"--pvclaimbinder-sync-period=" + pvSync.String(),
		"--v=2",
	}, kcmExtra...)}
	if err := kcm.start(); err != nil {
		return err
	}
	defer kcm.stop()
	kcmURL := fmt.Sprintf("https://127.0.0.1:%d", kcmPort)
	if err := waitHTTP(ctx, kcmURL+"/healthz", "", *timeout); err != nil {
		return fmt.Errorf("kube-controller-manager: %w (log: %s)", err, kcm.logPath())
	}

	var sched *component
	if *withScheduler {
		port := freePort()
		sched = &component{name: "kube-scheduler", dir: *dir, args: []string{
			"--kubeconfig=" + kubeconfig,
			"--authentication-kubeconfig=" + kubeconfig,
			"--authorization-kubeconfig=" + kubeconfig,
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--v=1",
		}}
		if err := sched.start(); err != nil {
			return err
		}
		defer sched.stop()
		if err := waitHTTP(ctx, fmt.Sprintf("https://127.0.0.1:%d/healthz", port), "", *timeout); err != nil {
			return fmt.Errorf("kube-scheduler: %w (log: %s)", err, sched.logPath())
		}
	}

	if *nodes > 0 {
		created, err := makeMountPoints()
		defer removeMountPoints(created)
		if err != nil {
			return err
		}
		for i := 1; i <= *nodes; i++ {
			name := fmt.Sprintf("node-%d", i)
			nd := filepath.Join(*dir, "nodes", name)
			if err := os.MkdirAll(nd, 0o755); err != nil {
				return err
			}
			n := &component{name: name, dir: filepath.Join(*dir, "nodes"), newNS: true, args: []string{
				"--name=" + name, "--dir=" + nd, "--kubeconfig=" + kubeconfig, "--node-ip=" + *bindAddr,
				fmt.Sprintf("--pod-cidr=10.244.%d.0/24", i), fmt.Sprintf("--bridge=dtrcni%d", i),
				"--path-prepend=" + *nodePath, "--images=" + *nodeImages,
				fmt.Sprintf("--kubelet-port=%d", freePortOn(*bindAddr)), fmt.Sprintf("--healthz-port=%d", freePort()),
			}}
			if err := n.start(); err != nil {
				return err
			}
			defer n.stop()
		}
	}

	if *withProxy {
		c, err := startProxy(ctx, *dir, kubeconfig, *clusterCIDR, *timeout)
		if err != nil {
			return err
		}
		defer c.stop()
	}
	info := map[string]any{
		"kubeconfig": kubeconfig, "server": server, "token": token, "dir": *dir,
		"etcd": etcdURL, "controllerManager": kcmURL, "version": k8sVersion,
		"pid": os.Getpid(), "caFile": caFile,
	}
	out, _ := json.Marshal(info)
	_ = os.WriteFile(filepath.Join(*dir, "plane.json"), out, 0o644)
	fmt.Println(string(out))

	restart := make(chan os.Signal, 1)
	signal.Notify(restart, syscall.SIGUSR1)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-restart:
			fmt.Fprintln(os.Stderr, "testplane: restarting kube-apiserver")
			api.stop()
			if err := api.start(); err != nil {
				return err
			}
			if err := waitHTTP(ctx, server+"/readyz", token, *timeout); err != nil {
				return fmt.Errorf("kube-apiserver after restart: %w", err)
			}
			fmt.Fprintln(os.Stderr, "testplane: kube-apiserver ready again")
		}
	}
}

// binary finds a component the envtest way: TEST_ASSET_<NAME>, then $KUBEBUILDER_ASSETS/<name>;
// otherwise this multicall executable runs it.
func binary(name string) (string, []string, error) {
	env := "TEST_ASSET_" + regexp.MustCompile(`[^A-Z0-9]+`).ReplaceAllString(strings.ToUpper(name), "_")
	if p := os.Getenv(env); p != "" {
		return p, nil, nil
	}
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			return filepath.Join(d, name), nil, nil
		}
	}
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	return self, []string{name}, nil
}

func (c *component) logPath() string { return filepath.Join(c.dir, c.name+".log") }

func (c *component) start() error {
	name := c.name
	if c.newNS {
		name = "node"
	}
	bin, pre, err := binary(name)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(c.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, append(pre, c.args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group, and killed with the launcher: a crashed test run leaves no orphans.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if c.newNS {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNS | syscall.CLONE_NEWPID
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	go func() { _ = cmd.Wait(); logf.Close() }()
	c.mu.Lock()
	c.cmd = cmd
	c.mu.Unlock()
	return nil
}

func (c *component) stop() {
	c.mu.Lock()
	cmd := c.cmd
	c.cmd = nil
	c.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cmd.ProcessState != nil || syscall.Kill(cmd.Process.Pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
}

func waitHTTP(ctx context.Context, url, token string, limit time.Duration) error {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // loopback, self-signed test certificates
	}}
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if last == nil {
		last = errors.New("no answer")
	}
	return fmt.Errorf("not ready after %s: %v", limit, last)
}

func writeKubeconfig(path, server, token string) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: testplane
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: testplane
  context:
    cluster: testplane
    user: admin
    namespace: default
current-context: testplane
`, server, token)
	return os.WriteFile(path, []byte(cfg), 0o600)
}

func freePort() int { return freePortOn("127.0.0.1") }

func freePortOn(addr string) int {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func writeECKey(path string) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeServingCert makes a CA and a kube-apiserver serving certificate signed by it, valid for
// loopback, the bind address, the first Service IP (10.0.0.1) and the kubernetes Service's DNS
// names. Returns the certificate, key and CA file paths.
func writeServingCert(dir, bind string) (string, string, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", "", err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	now := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "testplane-ca"},
		NotBefore: now, NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")}
	if ip := net.ParseIP(bind); ip != nil {
		ips = append(ips, ip)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now, NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", "", err
	}
	crt, kf, ca := filepath.Join(dir, "serving.crt"), filepath.Join(dir, "serving.key"), filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", "", err
	}
	if err := os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", "", err
	}
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return "", "", "", err
	}
	return crt, kf, ca, nil
}

// makeMountPoints creates the host directories the nodes bind their own copies onto (see
// node.go) where they are missing, and returns the ones it created, deepest first.
func makeMountPoints() ([]string, error) {
	var created []string
	for _, p := range nodePaths {
		var missing []string
		for d := p; d != "/"; d = filepath.Dir(d) {
			if _, err := os.Stat(d); err == nil {
				break
			}
			missing = append(missing, d)
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return created, err
		}
		created = append(created, missing...)
	}
	return created, nil
}

// removeMountPoints removes the directories makeMountPoints created, when they are empty.
func removeMountPoints(dirs []string) {
	for _, d := range dirs {
		_ = syscall.Rmdir(d)
	}
}

// startProxy runs kube-proxy in iptables mode for the host network namespace that every local
// node shares; one instance serves them all. It leaves the machine's conntrack settings alone.
func startProxy(ctx context.Context, dir, kubeconfig, clusterCIDR string, limit time.Duration) (*component, error) {
	healthz, metrics := freePort(), freePort()
	conf := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %s
mode: iptables
clusterCIDR: %s
hostnameOverride: node-1
healthzBindAddress: 127.0.0.1:%d
metricsBindAddress: 127.0.0.1:%d
# No NodePorts on 127.0.0.1: kube-proxy would otherwise set route_localnet and add a
# KUBE-FIREWALL rule to the machine's INPUT chain, which --cleanup does not remove.
iptables:
  localhostNodePorts: false
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, kubeconfig, clusterCIDR, healthz, metrics)
	path := filepath.Join(dir, "kube-proxy.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	c := &component{name: "kube-proxy", dir: dir, args: []string{"--config=" + path, "--v=1"}}
	if err := c.start(); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/livez", healthz), "", limit); err != nil {
		c.stop()
		return nil, fmt.Errorf("kube-proxy: %w (log: %s)", err, c.logPath())
	}
	return c, nil
}
