// Command fluxd-controlplane is a throw-away, loopback-only Kubernetes control
// plane for fluxd's integration tests and local runs: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and a simulated node, all from one
// binary.
//
// It is a multicall binary. "up" is the entry point: it creates the PKI, runs
// etcd in-process, re-executes itself as one child process per Kubernetes
// component, runs the node simulator, and prints "ready <kubeconfig>" once the
// cluster can run pods. The components are separate processes on purpose:
// their cobra commands share process-global state (klog flags, feature gates,
// the legacy metrics registry), which breaks when two of them run in one
// process.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	_ "time/tzdata" // CronJob time zones, as in the upstream kube-controller-manager

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream mains do
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

// components are the upstream commands this binary can become.
var components = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fluxd-controlplane up --data-dir DIR | kube-apiserver|kube-controller-manager|kube-scheduler [flags]")
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	if name == "up" {
		if err := up(args); err != nil {
			fmt.Fprintf(os.Stderr, "fluxd-controlplane: %v\n", err)
			os.Exit(1)
		}
		return
	}
	newCommand, ok := components[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "fluxd-controlplane: unknown subcommand %q\n", name)
		os.Exit(2)
	}
	cmd := newCommand()
	cmd.SetArgs(args)
	os.Exit(cli.Run(cmd))
}
