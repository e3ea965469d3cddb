package kernel

import (
	"fmt"
	"strings"

	"github.com/dumpkit/dumpkit/diskdump"
)

// BootLog is the kernel log of a synthetic RHEL4 machine with ramBytes of
// RAM that crashed: boot messages with printk levels, network link flaps
// (one pair per 2 MiB of RAM, so that the log of a machine of a few
// hundred MiB wraps around a LogBufLen ring), then an oops and the panic
// that led to the dump. Every line ends in a newline.
func BootLog(a diskdump.Arch, uts diskdump.Utsname, ramBytes uint64) []byte {
	var b strings.Builder
	p := func(level int, format string, args ...any) {
		fmt.Fprintf(&b, "<%d>", level)
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	p(5, "Linux version %s (bhcompile@dumpkit.example.com) (gcc version 3.4.6 20060404 (Red Hat 3.4.6-11)) %s", uts.Release, uts.Version)
	p(6, "BIOS-provided physical RAM map:")
	p(4, " BIOS-e820: 0000000000000000 - 000000000009fc00 (usable)")
	p(4, " BIOS-e820: 0000000000100000 - %016x (usable)", ramBytes)
	p(4, "%dMB LOWMEM available.", ramBytes>>20)
	p(6, "Kernel command line: ro root=LABEL=/ diskdump")
	p(6, "Memory: %dk/%dk available", ramBytes>>10-4096, ramBytes>>10)
	p(6, "CPU: %s", uts.Machine)
	p(6, "diskdump: Red Hat diskdump module loaded")
	p(6, "e1000: eth0: e1000_probe: Intel(R) PRO/1000 Network Connection")
	for i := range ramBytes >> 21 {
		p(6, "e1000: eth0: e1000_watchdog: NIC Link is Down (flap %d)", i)
		p(6, "e1000: eth0: e1000_watchdog: NIC Link is Up 1000 Mbps Full Duplex")
	}
	p(1, "Unable to handle kernel NULL pointer dereference at virtual address 00000000")
	p(1, " printing eip:")
	p(0, "Oops: 0002 [#1]")
	p(4, "CPU:    0")
	p(4, "Process insmod (pid: 4242, threadinfo %s task %s)", "c1234000", "c5678000")
	p(4, "Call Trace:")
	p(4, " [<c011e7a9>] do_exit+0x2c5/0x2cf")
	p(0, "Kernel panic - not syncing: Fatal exception")
	return []byte(b.String())
}
