package main

import (
	"context"
	"fmt"
	"os"

	"github.com/google/subcommands"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/runsc/cmd/util"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/flag"
	"gvisor.dev/gvisor/runsc/specutils"
)

// preflight wraps the user-facing commands that create containers (create,
// run) with a check of the bundle's dev.sealgofer.* annotations. The gofer
// checks them too, but its errors only reach --log and the debug log: the
// caller merely sees the sandbox fail to start. Checked here, a bad
// annotation is reported to whoever ran the command, before anything starts.
type preflight struct {
	subcommands.Command
}

func (p preflight) Execute(ctx context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	bundleDir := f.Lookup("bundle").Value.String()
	if bundleDir == "" {
		bundleDir, _ = os.Getwd()
	}
	// A spec that does not load is the stock command's to report.
	conf := args[0].(*config.Config)
	if spec, err := specutils.ReadSpec(bundleDir, conf); err == nil {
		if err := checkSpec(spec); err != nil {
			return util.Errorf("sealgofer: %v", err)
		}
		if p.Name() == "run" && f.NArg() == 1 && flagValue(f, "detach") != "true" && conf.RestoreFile == "" &&
			!conf.Rootless && hasSealgoferMounts(spec) {
			return runAttached(f, conf, spec, bundleDir, args[1].(*unix.WaitStatus))
		}
	}
	return p.Command.Execute(ctx, f, args...)
}

func hasSealgoferMounts(spec *specs.Spec) bool {
	settings, err := parseAnnotations(spec.Annotations)
	return err == nil && len(settings.Mounts) > 0
}

// checkSpec runs the gofer's own parsing and planning on the spec, with
// stand-in io FDs, and checks that the server binary can be executed.
func checkSpec(spec *specs.Spec) error {
	settings, err := parseAnnotations(spec.Annotations)
	if err != nil || len(settings.Mounts) == 0 {
		return err
	}
	ioFDs := []int{-1} // root
	for _, m := range spec.Mounts {
		if specutils.IsGoferMount(m) {
			ioFDs = append(ioFDs, -1)
		}
	}
	if _, err := planHandovers(spec, ioFDs, settings); err != nil {
		return err
	}
	binary := settings.Binary
	if binary == "" {
		binary = defaultSealgofer
	}
	info, err := os.Stat(binary)
	if err != nil {
		return fmt.Errorf("server binary: %w", err)
	}
	if !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("server binary %s is not an executable file", binary)
	}
	return nil
}
