package main

import (
	"fmt"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gvisor.dev/gvisor/runsc/specutils"
)

// handover is one mount that sealgofer serves instead of the stock gofer.
type handover struct {
	Mount    mountSettings
	IOFD     int  // the gofer's end of this mount's lisafs socket (--io-fds entry)
	Readonly bool // annotation readonly, or "ro" in the OCI mount options
}

// planHandovers pairs each sealgofer mount with its io FD. The mapping is the
// one runsc itself uses (container.createGoferProcess creates one socket per
// entry, runsc/cmd/gofer.go serves them in the same order): ioFDs[0] is the
// root, then one FD per spec mount for which specutils.IsGoferMount holds, in
// spec order. Calling IsGoferMount itself keeps the two in step.
func planHandovers(spec *specs.Spec, ioFDs []int, settings sealgoferSettings) ([]handover, error) {
	wanted := map[string]mountSettings{}
	for _, m := range settings.Mounts {
		wanted[m.Destination] = m
	}

	var plan []handover
	seen := map[string]bool{}
	next := 1 // ioFDs[0] belongs to the root mount
	for _, m := range spec.Mounts {
		destination := filepath.Clean(m.Destination)
		settings, assigned := wanted[destination]
		if !specutils.IsGoferMount(m) {
			if assigned {
				return nil, fmt.Errorf("sealgofer mount %q: the spec mount there is type %q with source %q, not a gofer-backed bind mount", destination, m.Type, m.Source)
			}
			continue
		}
		if next >= len(ioFDs) {
			return nil, fmt.Errorf("spec has more gofer mounts than --io-fds (%d)", len(ioFDs))
		}
		fd := ioFDs[next]
		next++
		if !assigned {
			continue
		}
		if seen[destination] {
			return nil, fmt.Errorf("sealgofer mount %q: several spec mounts have this destination", destination)
		}
		seen[destination] = true
		plan = append(plan, handover{
			Mount:    settings,
			IOFD:     fd,
			Readonly: settings.Readonly || hasOption(m.Options, "ro"),
		})
	}
	if next != len(ioFDs) {
		return nil, fmt.Errorf("spec needs %d io fds (root and %d gofer mounts) but --io-fds has %d", next, next-1, len(ioFDs))
	}
	for destination := range wanted {
		if !seen[destination] {
			return nil, fmt.Errorf("sealgofer mount %q: no mount with this destination in the spec", destination)
		}
	}
	return plan, nil
}

func hasOption(options []string, option string) bool {
	for _, o := range options {
		if o == option {
			return true
		}
	}
	return false
}
