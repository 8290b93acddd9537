# Sourced by ./build and ./unit-test: lays out a throw-away GOPATH entry for a
# GOPATH-mode build against Debian's gVisor source, without touching it.
#
#   sealgofer_gopath WORKDIR   sets GOPATH_OVERLAY and the Go environment.
#
# The overlay holds:
#   src/sealgofer.dev/runsc/{launcher,standin}  copies of this directory's Go
#       sources (GOPATH mode wants packages under a GOPATH src/ tree);
#   src/gvisor.dev/gvisor/pkg/sentry/loader/... copies of Debian's .go files of
#       pkg/sentry/loader and its vdsodata subpackage, plus a vdso.so that gcc
#       assembles from vdso/vdso.S. Debian ships vdsodata/vdso.so as a 1-byte
#       placeholder and the loader parses it at init time (panic unless it has
#       __kernel_rt_sigreturn). GOPATH mode picks, for each import path, the
#       first GOPATH entry where the directory exists, so loader must be
#       shadowed along with vdsodata, or its directory in the overlay (parent
#       of vdsodata) would hide Debian's loader sources.
# Nothing is committed from gVisor and /usr/share/gocode is only read.

GVISOR_SRC=/usr/share/gocode/src/gvisor.dev/gvisor

sealgofer_gopath() {
	local work=$1 here
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	[ -d "$GVISOR_SRC/runsc/cli" ] || { echo "missing $GVISOR_SRC (apt-get install golang-gvisor-gvisor-dev)" >&2; return 1; }
	command -v go >/dev/null || { echo "missing go (apt-get install golang-go)" >&2; return 1; }
	command -v gcc >/dev/null || { echo "missing gcc" >&2; return 1; }

	GOPATH_OVERLAY=$work/gopath
	local loader=$GOPATH_OVERLAY/src/gvisor.dev/gvisor/pkg/sentry/loader
	mkdir -p "$loader/vdsodata" "$GOPATH_OVERLAY/src/sealgofer.dev/runsc"
	cp "$GVISOR_SRC"/pkg/sentry/loader/*.go "$loader/"
	cp "$GVISOR_SRC"/pkg/sentry/loader/vdsodata/*.go "$loader/vdsodata/"
	gcc -nostdlib -shared -Wl,-soname,linux-vdso.so.1 -o "$loader/vdsodata/vdso.so" "$here/vdso/vdso.S"
	readelf -s "$loader/vdsodata/vdso.so" | grep -q ' GLOBAL .* __kernel_rt_sigreturn$' \
		|| { echo "vdso.so lacks a global __kernel_rt_sigreturn" >&2; return 1; }
	cp -r "$here/launcher" "$here/standin" "$GOPATH_OVERLAY/src/sealgofer.dev/runsc/"

	export GO111MODULE=off GOFLAGS= CGO_ENABLED=0
	export GOPATH=$GOPATH_OVERLAY:/usr/share/gocode
}
