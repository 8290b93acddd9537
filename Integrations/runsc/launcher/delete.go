package main

import (
	"context"

	"github.com/google/subcommands"
	"gvisor.dev/gvisor/runsc/cmd"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/container"
	"gvisor.dev/gvisor/runsc/flag"
)

// sealDelete is runsc's `delete` with one step in front: for a container with
// sealgofer mounts whose sandbox has stopped, give its gofer serverExitGrace
// to exit by itself (after its servers have committed, see serverwait.go)
// before the stock command destroys the container, which SIGKILLs the gofer.
// This is the path of container engines (create/start/…/delete).
type sealDelete struct {
	cmd.Delete
}

func (d *sealDelete) Execute(ctx context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := args[0].(*config.Config)
	for _, id := range f.Args() {
		c, err := container.Load(conf.RootDir, container.FullID{ContainerID: id}, container.LoadOpts{})
		if err != nil || c.Spec == nil || c.IsSandboxRunning() {
			continue // errors and running sandboxes are the stock command's
		}
		if settings, err := parseAnnotations(c.Spec.Annotations); err == nil && len(settings.Mounts) > 0 {
			awaitGoferExit(c.GoferPid, serverExitGrace)
		}
	}
	return d.Delete.Execute(ctx, f, args...)
}
