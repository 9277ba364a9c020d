// Command paygate is the payment gateway: one binary, one subcommand per
// role (DESIGN.md §9).
//
//	paygate dev               everything in one process, on embedded defaults
//	paygate ingress           the HTTP ingress
//	paygate consume <group>   one consumer group member (payinit, callbacks, refunds)
//	paygate relay             the outbox relay
//	paygate sweep             status probes for attempts without callback, expiry
//	paygate migrate           apply database migrations
//	paygate sim               the simulator PSP
//	paygate order ID          an order's whole history
//	paygate risk ...          risk rules (apply, show, history, explain) and the review queue
//	paygate dlq replay TOPIC  send dead-lettered messages back to their topic (dlq list, dlq sizes)
//	paygate console hash-password  a bcrypt hash for PAYGATE_CONSOLE_USERS
//	paygate healthcheck URL   exit 0 if URL answers 2xx (container healthchecks)
//
// Configuration comes from the environment; `paygate help` lists it. The
// load harness is a command of its own, cmd/paygate-bench: the production
// binary carries no load generator.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := realMain(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "paygate:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode is 2 for a usage or configuration error, 1 for any other.
func exitCode(err error) int {
	var u usageError
	var c configError
	if errors.As(err, &u) || errors.As(err, &c) {
		return 2
	}
	return 1
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg + " (see: paygate help)" }

func realMain(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"no subcommand"}
	}
	switch args[0] { // these need no configuration from the environment
	case "healthcheck":
		return runHealthcheck(ctx, args[1:], os.Stderr)
	case "psp":
		return runPSP(args[1:], os.Stdout)
	case "console":
		return runConsole(args[1:], os.Stdin, os.Stdout)
	}
	cfg, err := LoadConfig(os.Getenv)
	if err != nil && args[0] != "help" {
		return err
	}
	switch args[0] {
	case "dev":
		return runDev(ctx, cfg)
	case "ingress":
		return runRole(ctx, cfg, roleIngress)
	case "consume":
		if len(args) != 2 {
			return usageError{"consume needs one group: payinit, callbacks, refunds or recon"}
		}
		switch args[1] {
		case "payinit":
			return runRole(ctx, cfg, rolePayinit)
		case "callbacks":
			return runRole(ctx, cfg, roleCallbacks)
		case "refunds":
			return runRole(ctx, cfg, roleRefunds)
		case "recon":
			return runRole(ctx, cfg, roleRecon)
		}
		return usageError{fmt.Sprintf("unknown consumer group %q", args[1])}
	case "relay":
		return runRole(ctx, cfg, roleRelay)
	case "sweep":
		return runRole(ctx, cfg, roleSweep)
	case "migrate":
		return runMigrate(ctx, cfg)
	case "sim":
		return runSim(ctx, cfg)
	case "broker":
		return runBroker(ctx, cfg)
	case "order":
		return runOrder(ctx, cfg, args[1:], os.Stdout)
	case "dlq":
		return runDLQ(ctx, cfg, args[1:], os.Stdout)
	case "recon":
		return runRecon(ctx, cfg, args[1:], os.Stdout)
	case "routing":
		return runRouting(ctx, cfg, args[1:], os.Stdin, os.Stdout)
	case "risk":
		return runRisk(ctx, cfg, args[1:], os.Stdin, os.Stdout)
	case "help", "-h", "--help":
		fmt.Print(helpText + envHelp() + pspHelp)
		return nil
	}
	return usageError{fmt.Sprintf("unknown subcommand %q", args[0])}
}
