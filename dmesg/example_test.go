package dmesg_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"

	"github.com/dumpkit/dumpkit/dmesg"
)

// flatMemory is physical memory from address 0, as a dump holds it.
type flatMemory []byte

func (m flatMemory) PageSize() int { return 4096 }

func (m flatMemory) ReadPage(pfn uint64, dst []byte) ([]byte, error) {
	if pfn >= uint64(len(m)/4096) {
		return nil, errors.New("page not in the dump")
	}
	return append(dst[:0], m[pfn*4096:pfn*4096+4096]...), nil
}

func (m flatMemory) frames() iter.Seq[uint64] {
	return func(yield func(uint64) bool) {
		for pfn := range uint64(len(m) / 4096) {
			if !yield(pfn) {
				return
			}
		}
	}
}

// writeLog writes the kernel log of a dump in makedumpfile's format, as
// savecore does: symbols from the dump's note, its memory or a System.map.
func writeLog(w io.Writer, mem flatMemory, uts dmesg.Utsname, note []byte, sysMap io.Reader) error {
	arch, err := dmesg.ParseArch(uts.Machine)
	if err != nil {
		return err // e.g. "dmesg: ppc64: reading the kernel log is not supported"
	}
	src := dmesg.Sources{Utsname: uts, Note: note, Pages: mem.frames()}
	if sysMap != nil {
		if src.Map, err = dmesg.ParseSystemMap(sysMap); err != nil {
			return err
		}
	}
	info, origin, err := dmesg.FindSymbols(mem, arch, src)
	if err != nil {
		return err // one line saying why each source was refused
	}
	log, err := dmesg.Read(mem, arch, info)
	if log == nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "%s log, symbols from the %s:\n", log.Layout, origin)
	if _, werr := log.WriteTo(w); werr != nil {
		return werr
	}
	return err // a corrupt ring: the records before the damage were written
}

// Example builds a small RHEL4-like i386 machine, as dumpformat -R does,
// and reads its log back through its System.map.
func Example() {
	const kvbase = 0xc0000000
	mem := make(flatMemory, 1<<20)
	uts := dmesg.Utsname{Sysname: "Linux", Nodename: "db1", Release: "2.6.9-89.EL",
		Version: "#1 Mon Jun 22 12:19:21 EDT 2009", Machine: "i686"}
	copy(mem[0x80000:], uts.Bytes())
	text := []byte("<6>Linux version 2.6.9-89.EL\n<0>Kernel panic - not syncing: Oops\n")
	ring, end, err := dmesg.LegacyRing(text, 64) // smaller than the text: it wraps
	if err != nil {
		panic(err)
	}
	copy(mem[0x90000:], ring)
	le := binary.LittleEndian
	le.PutUint32(mem[0x81000:], kvbase+0x90000) // log_buf
	le.PutUint32(mem[0x81004:], 64)             // log_buf_len
	le.PutUint32(mem[0x81008:], uint32(end))    // log_end (unsigned long)
	le.PutUint32(mem[0x8100c:], 64)             // logged_chars
	var sysMap bytes.Buffer
	err = dmesg.WriteSystemMap(&sysMap, []dmesg.Symbol{
		{Addr: kvbase + 0x100000, Type: 'T', Name: "_stext"},
		{Addr: kvbase + 0x80000, Type: 'D', Name: "system_utsname"},
		{Addr: kvbase + 0x81000, Type: 'd', Name: "log_buf"},
		{Addr: kvbase + 0x81004, Type: 'd', Name: "log_buf_len"},
		{Addr: kvbase + 0x81008, Type: 'b', Name: "log_end"},
		{Addr: kvbase + 0x8100c, Type: 'b', Name: "logged_chars"},
	}, 32)
	if err != nil {
		panic(err)
	}
	if err := writeLog(os.Stdout, mem, uts, nil, bytes.NewReader(sysMap.Bytes())); err != nil {
		fmt.Println(err)
	}
	// The map of another build of the same release is refused.
	uts.Version = "#1 Wed Jan 1 00:00:00 EST 2009"
	if err := writeLog(os.Stdout, mem, uts, nil, bytes.NewReader(sysMap.Bytes())); err != nil {
		fmt.Println(err)
	}
	// Output:
	// legacy log, symbols from the System.map:
	// 6>Linux version 2.6.9-89.EL
	// <0>Kernel panic - not syncing: Oops
	// dmesg: no symbols for the log: VMCOREINFO in memory: VMCOREINFO not found for release "2.6.9-89.EL"; System.map: System.map does not match the dump: version at system_utsname is "#1 Mon Jun 22 12:19:21 EDT 2009", the dump has "#1 Wed Jan 1 00:00:00 EST 2009"
}
