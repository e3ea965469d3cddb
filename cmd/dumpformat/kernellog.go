package main

import (
	"bytes"
	"fmt"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
	"github.com/dumpkit/dumpkit/dmesg"
	"github.com/google/renameio/v2"
)

// rehearsalUtsname is the utsname the rehearsal kernel writes in its dump
// header: RHEL4's, with --release and --nodename.
func rehearsalUtsname(o *options) diskdump.Utsname {
	u := kernel.DefaultUtsname(o.arch)
	if o.release != "" {
		u.Release = o.release
	}
	if o.nodename != "" {
		u.Nodename = o.nodename
	}
	return u
}

// withKernelLog gives the synthetic machine of a rehearsal a kernel log
// (kernel.BootLog, ending in an oops and a panic) where a RHEL4 kernel
// keeps it, and writes its System.map to --system-map, so that savecore
// can be rehearsed writing vmcore-dmesg.txt. Architectures whose log
// savecore cannot read, and machines without RAM at 1-5 MiB, keep their
// memory as it is (a System.map cannot be written for them).
func (c *command) withKernelLog(m *kernel.SyntheticMachine, ram uint64) (kernel.MemorySource, error) {
	o := c.o
	uts := rehearsalUtsname(o)
	lm, err := kernel.NewLogMachine(m, o.arch, m.PageSize(), uts, kernel.BootLog(o.arch, uts, ram))
	if err != nil {
		if o.systemMap != "" {
			return nil, fmt.Errorf("--system-map: %w", err)
		}
		c.log.Debug("rehearsal machine without a kernel log", "err", err)
		return m, nil
	}
	if o.systemMap == "" {
		return lm, nil
	}
	var b bytes.Buffer
	if err := dmesg.WriteSystemMap(&b, lm.Symbols(), lm.Bits()); err != nil {
		return nil, err
	}
	if err := renameio.WriteFile(o.systemMap, b.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("--system-map: %w", err)
	}
	return lm, nil
}
