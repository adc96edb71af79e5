// Command testplane is a multicall binary that runs upstream Kubernetes components
// (kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kubectl, and for the local
// nodes of `make cluster` kubelet and kube-proxy) unmodified, plus an
// "up" launcher that starts a loopback-only control plane for end-to-end tests and demos.
//
// Every component is upstream's own cobra command or main function; this file only picks
// one by its first argument, the way hyperkube did. Each component runs in its own process.
package main

import (
	"context"
	"fmt"
	"os"

	_ "time/tzdata" // upstream kube-apiserver links the zone database for CronJob time zones

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	sub, rest := os.Args[1], os.Args[2:]
	switch sub {
	case "kube-apiserver":
		c := apiserver.NewAPIServerCommand()
		c.SetArgs(rest)
		os.Exit(cli.Run(c))
	case "kube-controller-manager":
		c := controllermanager.NewControllerManagerCommand()
		c.SetArgs(rest)
		os.Exit(cli.Run(c))
	case "kube-scheduler":
		c := scheduler.NewSchedulerCommand()
		c.SetArgs(rest)
		os.Exit(cli.Run(c))
	case "kube-proxy":
		c := proxy.NewProxyCommand()
		c.SetArgs(rest)
		os.Exit(cli.Run(c))
	case "kubelet":
		c := kubelet.NewKubeletCommand(context.Background())
		c.SetArgs(rest)
		os.Exit(cli.Run(c))
	case "kubectl":
		c := kubectlcmd.NewDefaultKubectlCommand()
		c.SetArgs(rest)
		if err := cli.RunNoErrOutput(c); err != nil {
			kubectlutil.CheckErr(err) // prints kubectl-style errors and exits non-zero
		}
	case "etcd":
		// etcdmain reads its flags from args[1:], like its own main.
		etcdmain.Main(append([]string{"etcd"}, rest...))
	case "up":
		if err := up(rest); err != nil {
			fmt.Fprintln(os.Stderr, "testplane up:", err)
			os.Exit(1)
		}
	case "node":
		if err := nodeMain(rest); err != nil {
			fmt.Fprintln(os.Stderr, "testplane node:", err)
			os.Exit(1)
		}
	case "version":
		fmt.Println(buildVersion())
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: testplane up|kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy|kubelet|etcd|kubectl|version [flags]")
	os.Exit(2)
}
