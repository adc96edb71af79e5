package main

// A local node of `make cluster`: containerd + kubelet in their own mount and PID namespaces.
//
// `up --nodes N` starts `testplane node` once per node with CLONE_NEWNS|CLONE_NEWPID. Inside,
// the node is PID 1 of its namespace: when it exits (SIGTERM from `up`, or SIGKILL when `up`
// dies), the kernel kills every process of the node (containerd, its shims, kubelet, every
// container) and the node's mounts (pod volumes, kubelet's tmpfs, the bind mounts below)
// disappear with its mount namespace. Nothing of a node survives `make cluster-down`.
//
// Each node sees its own copy of the host paths a node-side storage driver and its installer
// use, bind-mounted from the node's directory, so two nodes on one machine do not share them:
// the kubelet plugin dir (where the DaemonSet installs the FlexVolume driver), /etc/datera,
// /etc/iscsi (a per-node initiator name), /etc/multipath, /var/lib/datera, /var/lib/kubelet,
// /var/lib/cni, /var/log and /dev/disk/by-path; /run is a fresh tmpfs. Both nodes share the
// host's network namespace; each has its own CNI bridge and pod range.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// nodePaths are the host paths each node gets its own copy of (see above).
var nodePaths = []string{
	"/usr/libexec/kubernetes/kubelet-plugins/volume/exec",
	"/etc/datera",
	"/etc/iscsi",
	"/etc/multipath",
	"/var/lib/datera",
	"/var/lib/kubelet",
	"/var/lib/cni",
	"/var/log",
	"/dev/disk/by-path",
}

type nodeOptions struct {
	name, dir, kubeconfig, nodeIP, podCIDR, bridge, pathPrepend, sandboxImage string
	images                                                                    []string
	kubeletPort, healthzPort                                                  int
	kubeletArgs                                                               []string
}

func nodeMain(args []string) error {
	fs := flag.NewFlagSet("node", flag.ExitOnError)
	o := nodeOptions{}
	fs.StringVar(&o.name, "name", "", "node name")
	fs.StringVar(&o.dir, "dir", "", "node state directory")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig kubelet uses")
	fs.StringVar(&o.nodeIP, "node-ip", "", "node address (kubelet listens there)")
	fs.StringVar(&o.podCIDR, "pod-cidr", "", "pod range of this node (CNI bridge + host-local)")
	fs.StringVar(&o.bridge, "bridge", "", "CNI bridge device name")
	fs.StringVar(&o.pathPrepend, "path-prepend", "", "directory put first in kubelet's PATH (call-outs see it)")
	fs.StringVar(&o.sandboxImage, "sandbox-image", "registry.k8s.io/pause:3.10", "pod sandbox image")
	images := fs.String("images", "", "comma-separated image archives imported into the node's containerd")
	fs.IntVar(&o.kubeletPort, "kubelet-port", 10250, "kubelet port on --node-ip")
	fs.IntVar(&o.healthzPort, "healthz-port", 10248, "kubelet healthz port on 127.0.0.1")
	var extra multiFlag
	fs.Var(&extra, "kubelet-arg", "extra kubelet flag (repeatable)")
	_ = fs.Parse(args)
	o.kubeletArgs = extra
	for _, i := range strings.Split(*images, ",") {
		if i != "" {
			o.images = append(o.images, i)
		}
	}
	if o.name == "" || o.dir == "" || o.kubeconfig == "" || o.nodeIP == "" || o.podCIDR == "" || o.bridge == "" {
		return errors.New("--name, --dir, --kubeconfig, --node-ip, --pod-cidr and --bridge are required")
	}
	if os.Getpid() != 1 {
		return errors.New("run by `testplane up --nodes N`: a node must be PID 1 of its own PID namespace")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// PID 1 must reap orphans (containerd's shims re-parent here when containerd restarts).
	go reap()
	if err := nodeMounts(o); err != nil {
		return fmt.Errorf("%s: mounts: %w", o.name, err)
	}
	sock, err := startContainerd(ctx, o)
	if err != nil {
		return err
	}
	for _, img := range o.images {
		cmd := exec.CommandContext(ctx, "ctr", "--address", sock, "-n", "k8s.io", "images", "import", img)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: import %s: %v: %s", o.name, img, err, out)
		}
	}
	kubelet, err := startKubelet(o, sock)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- kubelet.Wait() }()
	select {
	case <-ctx.Done():
		_ = kubelet.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		return nil // exiting PID 1 kills the rest of the node
	case err := <-done:
		return fmt.Errorf("%s: kubelet exited: %v (log: %s)", o.name, err, filepath.Join(o.dir, "kubelet.log"))
	}
}

func reap() {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.SIGCHLD)
	for range ch {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

func nodeMounts(o nodeOptions) error {
	// Mounts made here stay here; the host's later mounts still show up (slave).
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make / rslave: %w", err)
	}
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if err := syscall.Mount("tmpfs", "/run", "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=755"); err != nil {
		return fmt.Errorf("mount /run: %w", err)
	}
	for _, p := range nodePaths {
		src := filepath.Join(o.dir, "root", p)
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		// The mount point must exist on the host; `up` created it (and removes it when it was
		// the one that created it), so only check here.
		if st, err := os.Stat(p); err != nil || !st.IsDir() {
			return fmt.Errorf("mount point %s missing on the host", p)
		}
		if err := syscall.Mount(src, p, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", p, err)
		}
	}
	// The node's iSCSI initiator name, as open-iscsi's package writes it on a real node.
	iqn := fmt.Sprintf("InitiatorName=iqn.1993-08.org.debian:01:%s\n", o.name)
	return os.WriteFile("/etc/iscsi/initiatorname.iscsi", []byte(iqn), 0o644)
}

func startContainerd(ctx context.Context, o nodeOptions) (string, error) {
	cd := filepath.Join(o.dir, "containerd")
	cni := filepath.Join(o.dir, "cni")
	for _, d := range []string{cd, cni} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	sock := filepath.Join(o.dir, "containerd.sock")
	conf := fmt.Sprintf(`version = 2
root = %q
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = %q
[ttrpc]
  address = "/run/containerd/ttrpc.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # root here lacks CAP_SYS_RESOURCE: never lower a container's oom_score_adj (real-node.md).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
`, filepath.Join(cd, "root"), sock, filepath.Join(cd, "opt"), o.sandboxImage, cni)
	if err := os.WriteFile(filepath.Join(cd, "config.toml"), []byte(conf), 0o644); err != nil {
		return "", err
	}
	netconf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "dtr-%s",
  "plugins": [{
    "type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}
  }]
}
`, o.name, o.bridge, o.podCIDR)
	if err := os.WriteFile(filepath.Join(cni, "10-bridge.conflist"), []byte(netconf), 0o644); err != nil {
		return "", err
	}
	_ = os.Remove(sock)
	logf, err := os.OpenFile(filepath.Join(o.dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	cmd := exec.Command("containerd", "--config", filepath.Join(cd, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("%s: start containerd: %w", o.name, err)
	}
	go func() { _ = cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if err := exec.CommandContext(ctx, "ctr", "--address", sock, "version").Run(); err == nil {
			return sock, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "", fmt.Errorf("%s: containerd not ready after 60 s (log: %s)", o.name, filepath.Join(o.dir, "containerd.log"))
}

func startKubelet(o nodeOptions, sock string) (*exec.Cmd, error) {
	conf := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
# A local test node: kubelet listens only on the cluster's own address (never an external
# interface) and serves kube-apiserver's logs/exec requests without client certificates.
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization:
  mode: AlwaysAllow
# Measured on this machine (reference/real-node.md): cgroup v1 with cgroupfs, no QoS cgroups.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
containerRuntimeEndpoint: unix://%s
volumePluginDir: /usr/libexec/kubernetes/kubelet-plugins/volume/exec
resolvConf: /etc/resolv.conf
# No KUBE-FIREWALL / canary chains on the shared host network namespace.
makeIPTablesUtilChains: false
serializeImagePulls: false
syncFrequency: 10s
nodeStatusUpdateFrequency: 5s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  imagefs.available: 1%%
  nodefs.inodesFree: 1%%
`, o.nodeIP, o.kubeletPort, o.healthzPort, sock)
	path := filepath.Join(o.dir, "kubelet.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	bin, pre, err := binary("kubelet")
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(o.dir, "kubelet.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	args := append(pre, "--config="+path, "--kubeconfig="+o.kubeconfig, "--hostname-override="+o.name,
		"--node-ip="+o.nodeIP, "--v=2")
	cmd := exec.Command(bin, append(args, o.kubeletArgs...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	env := os.Environ()
	if o.pathPrepend != "" {
		for i, e := range env {
			if strings.HasPrefix(e, "PATH=") {
				env[i] = "PATH=" + o.pathPrepend + ":" + strings.TrimPrefix(e, "PATH=")
			}
		}
	}
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start kubelet: %w", o.name, err)
	}
	return cmd, nil
}
