/*
 * Stand-in vDSO image for linking runsc/cli (see ../README.md, "vDSO note").
 *
 * Debian's gVisor source ships pkg/sentry/loader/vdsodata/vdso.so as a 1-byte
 * placeholder, and pkg/sentry/loader parses it at package init time, panicking
 * unless it is an ELF with a global __kernel_rt_sigreturn symbol. The launcher
 * never runs a sentry (`boot` is delegated to Debian's /usr/bin/runsc), so this
 * image only has to satisfy that init-time check; it is never mapped into a
 * sandboxed process.
 */
	.text
	.globl __kernel_rt_sigreturn
	.type __kernel_rt_sigreturn, @function
__kernel_rt_sigreturn:
	mov $15, %rax /* rt_sigreturn */
	syscall
	.size __kernel_rt_sigreturn, . - __kernel_rt_sigreturn
