// SPDX-License-Identifier: Apache-2.0

// Command pause is the sandbox ("pause") container of the local cluster's pods: it holds the
// pod's namespaces open and does nothing else. It sleeps until SIGTERM or SIGINT and then exits
// 0; as PID 1 of a pod that shares its process namespace it reaps every exited child on SIGCHLD,
// so no zombie outlives its parent. Built static (CGO_ENABLED=0) with no dependencies.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause (datera-provisioner local cluster)")
		return
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			reapChildren()
			continue
		}
		os.Exit(0)
	}
}

// reapChildren collects every child that has exited; signals coalesce, so one SIGCHLD may stand
// for several exits.
func reapChildren() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
