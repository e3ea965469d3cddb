// Package dmesg reads the kernel log, and the symbols needed to find it,
// from the physical memory of a dumped machine, without a debuginfo vmlinux
// (doc/DMESG.md).
//
// Memory is the page reader: any dump that can return a page by frame
// number (a dump partition, a vmcore file). The symbols come from a
// VMCOREINFO text, parsed by ParseVMCOREINFO from a dump's note or found in
// the dumped memory by FindVMCOREINFO, or, for kernels that have none such as
// RHEL4's 2.6.9, from a System.map (ParseSystemMap, checked against the dump
// by CheckSystemMap, turned into a VMCOREINFO by SystemMap.VMCOREINFO).
// FindSymbols tries these sources in that order.
//
// Read decodes the log in any of the three layouts (Lockless, Structured,
// Legacy) on x86_64 and i386; Log.WriteTo writes it in the text format of
// makedumpfile --dump-dmesg 1.7.2, so the two can be compared byte for byte.
// LegacyRing and WriteSystemMap build the legacy log and System.map of a
// synthetic machine.
//
// Every pointer, index and size read from the dump is checked: bad input
// gives a typed error (*AddrError, *CorruptError, *KeyError, *SyntaxError,
// *MismatchError, *ArchError), never a panic, a huge allocation or an
// unbounded loop.
package dmesg
