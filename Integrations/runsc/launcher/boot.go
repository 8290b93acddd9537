package main

import (
	"context"
	"fmt"
	"os"

	"github.com/google/subcommands"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/runsc/cmd"
	"gvisor.dev/gvisor/runsc/cmd/util"
	"gvisor.dev/gvisor/runsc/flag"
)

// delegatedBoot replaces runsc's `boot` subcommand, which runs the sandbox
// kernel (the sentry), by an exec of Debian's own runsc with the very same
// arguments, environment and inherited descriptors: the sentry that runs is
// Debian's build, not this binary's (whose vDSO is a link-time stand-in).
type delegatedBoot struct {
	stock cmd.Boot
}

func (b *delegatedBoot) Name() string     { return b.stock.Name() }
func (b *delegatedBoot) Synopsis() string { return b.stock.Synopsis() + " (runs " + stockRunsc + ")" }
func (b *delegatedBoot) Usage() string    { return b.stock.Usage() }

// SetFlags registers the stock flags so that parsing accepts exactly what
// runsc passes; the values are not used here.
func (b *delegatedBoot) SetFlags(f *flag.FlagSet) { b.stock.SetFlags(f) }

func (b *delegatedBoot) Execute(context.Context, *flag.FlagSet, ...any) subcommands.ExitStatus {
	if err := refuseSelf(stockRunsc); err != nil {
		util.Fatalf("sealgofer launcher: %v", err)
	}
	err := unix.Exec(stockRunsc, os.Args, os.Environ())
	util.Fatalf("sealgofer launcher: exec %s: %v", stockRunsc, err)
	panic("unreachable")
}

// refuseSelf stops an exec loop when the launcher itself was installed at the
// path it delegates to.
func refuseSelf(path string) error {
	self, err := os.Stat("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("stat /proc/self/exe: %w", err)
	}
	target, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stock runsc: %w", err)
	}
	if os.SameFile(self, target) {
		return fmt.Errorf("%s is this launcher itself; install the launcher under another name and keep Debian's runsc there", path)
	}
	return nil
}
