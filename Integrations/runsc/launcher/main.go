// Command runsc-sealgofer is runsc (Debian's gVisor build, runsc/cli) with two
// of its internal subcommands replaced:
//
//   - gofer: hands the sockets of mounts that the bundle's dev.sealgofer.*
//     annotations assign to sealgofer over to `sealgofer serve` children,
//     then runs the stock gofer for everything else;
//   - boot: executes Debian's own runsc, so the sandbox kernel is Debian's;
//   - create, run: check the annotations first, so that mistakes are reported
//     to the caller rather than only to the gofer's logs;
//   - run (attached), delete: let the gofer of a container with sealgofer
//     mounts exit by itself, after its servers have committed, instead of
//     SIGKILLing it right after the container exits (serverwait.go).
//
// runsc starts the sandbox and the gofer by re-executing /proc/self/exe, so
// this binary must be the one invoked as the OCI runtime.
package main

import (
	"os"

	"github.com/google/subcommands"
	"gvisor.dev/gvisor/runsc/cli"
	"gvisor.dev/gvisor/runsc/cmd"
)

// Set at build time (-ldflags -X); see ../build.
var (
	version          = "unknown"
	stockRunsc       = "/usr/bin/runsc"
	defaultSealgofer = "/usr/local/bin/sealgofer"
)

// internalGroup is the group cli.Main registers boot and gofer in (create
// and run are in the unnamed group "").
// google/subcommands dispatches to the first registered command of a name,
// walking groups in creation order and commands in registration order;
// registering ours first, in the same group, puts them ahead of the stock
// ones however the groups get sorted for help output.
const internalGroup = "internal use only"

func main() {
	if len(os.Args) > 1 && os.Args[1] == serverExecCommand {
		serverExec(os.Args[2:])
	}
	selfExecutable, _ = os.Executable()
	subcommands.Register(new(sealGofer), internalGroup)
	subcommands.Register(new(delegatedBoot), internalGroup)
	subcommands.Register(preflight{new(cmd.Create)}, "")
	subcommands.Register(preflight{new(cmd.Run)}, "")
	subcommands.Register(new(sealDelete), "")
	cli.Main(version)
}
