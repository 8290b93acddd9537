/*
 * Stand-in for gVisor's vDSO image, used ONLY to let the interop test binary
 * start. Debian's golang-gvisor-gvisor-dev ships pkg/sentry/loader/vdsodata/
 * vdso.so as a 1-byte placeholder; pkg/sentry/loader parses it in a package
 * initializer and panics if it is not an ELF file exporting
 * __kernel_rt_sigreturn. runsc/fsgofer links the loader transitively (via
 * runsc/config -> ... -> pkg/sentry/kernel) but never loads a vDSO, so a
 * minimal shared object defining that symbol is enough.
 */
void __kernel_rt_sigreturn(void) {}
