package kernel

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/dumpkit/dumpkit/diskdump"
)

// ReadWriterAt is a dump partition as the writer uses it: it reads blocks to
// check the format signatures and writes the dump.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// Config holds the kernel's module parameters and the crash context
// for WriteDump. Fields are taken literally (SampleRate 0 checks every
// chunk); DefaultConfig gives the module's defaults.
type Config struct {
	Arch       diskdump.Arch
	BlockSize  int  // page size = block size; 0 means Arch.PageSize()
	BlockOrder uint // I/O chunk = 1<<BlockOrder blocks (kernel default 2, at most 10)
	SampleRate int  // signature check skip exponent (default 8); < 0: no check
	Compress   bool // compress=1: zlib record stream
	DumpLevel  int  // partial dump bits (doc/FORMAT.md §6.4)
	// Utsname is system_utsname; the zero value means DefaultUtsname(Arch).
	Utsname diskdump.Utsname
	Time    time.Time // xtime: tv_sec and tv_nsec (RHEL4 struct timespec)
	// NrCPUs is num_online_cpus (0 means 1); CurrentCPU the dumping CPU;
	// Tasks the current task_struct address of each CPU (tasks[]).
	NrCPUs     int
	CurrentCPU int
	Tasks      []uint64
	// Regs are the panic registers in RegNames order (elf_gregset_t);
	// SwitchStacks the ia64 sw[] switch_stack addresses.
	Regs         []uint64
	SwitchStacks []uint64
	// KernelBugs reproduces the published RHEL4 source's sub-header bugs:
	// ppc64 writes an all-zero block, ia64 leaves the registers zero
	// (doc/FORMAT.md §5, §13 item 16). Off by default: registers are written.
	KernelBugs bool
	// FreeListCorrupt makes diskdump_mark_free_pages fail: dump_level bit 4
	// then excludes nothing.
	FreeListCorrupt bool
	// StopAfterBlocks simulates a power cut after that many block writes
	// (every block counts, headers included; a multi-block write that
	// crosses the limit lands its first blocks only). 0 means no cut.
	StopAfterBlocks int64
	// Deflate, when set, replaces compress/zlib level 1 for compressed
	// dumps: it returns the compressed form of page (appended to dst[:0]);
	// a result of a block or more is stored raw. Tests use it to replay the
	// kernel zlib's exact output. It must be safe for concurrent use.
	Deflate func(page, dst []byte) []byte
	// Workers is the number of goroutines that read, check and compress
	// pages ahead of the pass (0 means GOMAXPROCS, 1 none). The pass and
	// every write stay sequential and in the kernel's order.
	Workers int
	// DeviceName appears in "start dumping to NAME"; default "dump".
	DeviceName string
	// OnSaved, when set, is called for every page whose data (raw block or
	// whole record) has reached the partition: its PFN, the byte offset of
	// the block or record on the partition and its length.
	OnSaved func(pfn uint64, off int64, nbytes int)
}

// DefaultConfig returns the module defaults (block_order 2,
// sample_rate 8, dump_level 0, compress 0) for an architecture, one CPU.
func DefaultConfig(a diskdump.Arch) Config {
	return Config{Arch: a, BlockOrder: 2, SampleRate: 8, NrCPUs: 1}
}

// DefaultUtsname is the utsname of a RHEL4 (2.6.9) kernel on a.
func DefaultUtsname(a diskdump.Arch) diskdump.Utsname {
	rel := "2.6.9-89.ELsmp"
	if a == diskdump.ArchIA64 || a == diskdump.ArchPPC64 {
		rel = "2.6.9-89.EL"
	}
	return diskdump.Utsname{Sysname: "Linux", Nodename: "dumpkit.example.com", Release: rel,
		Version: "#1 SMP Mon Jun 22 12:19:40 EDT 2009", Machine: a.Machine(), Domainname: "(none)"}
}

// pageSizer is implemented by memory sources that have a page size of
// their own (ELF cores); WriteDump checks it against the dump's block size.
type pageSizer interface {
	PageSize() int
}

// checked is what Config.check derives from a valid configuration.
type checked struct {
	layout    diskdump.Layout
	blockSize int
	nrCPUs    int // num_online_cpus
	ncpu      int // entries of tasks[]
}

// check validates the configuration against the memory source and the
// device size: the limits of the kernel's types and of the header and
// sub-header blocks.
func (cfg Config) check(src MemorySource, deviceBlocks uint64) (checked, error) {
	a := cfg.Arch
	if a.GRegsSize() == 0 {
		return checked{}, fmt.Errorf("diskdump: writer: architecture %v: %w", a, diskdump.ErrUnsupportedVersion)
	}
	bs := cfg.BlockSize
	if bs == 0 {
		bs = a.PageSize()
	}
	if !diskdump.ValidBlockSize(int64(bs)) {
		return checked{}, fmt.Errorf("diskdump: writer: block size %d is not a power of two from 4096 to 65536: %w", bs, diskdump.ErrCorrupt)
	}
	if ps, ok := src.(pageSizer); ok && ps.PageSize() != bs {
		return checked{}, fmt.Errorf("diskdump: writer: memory source has %d-byte pages, the dump %d-byte blocks: %w", ps.PageSize(), bs, diskdump.ErrCorrupt)
	}
	if cfg.BlockOrder > 10 {
		return checked{}, fmt.Errorf("diskdump: writer: block_order %d exceeds 10 (MAX_ORDER-1): %w", cfg.BlockOrder, diskdump.ErrCorrupt)
	}
	if cfg.SampleRate >= 0 && int(cfg.BlockOrder)+cfg.SampleRate > 31 {
		return checked{}, fmt.Errorf("diskdump: writer: block_order %d + sample_rate %d overflow the kernel's 32-bit skip: %w", cfg.BlockOrder, cfg.SampleRate, diskdump.ErrCorrupt)
	}
	if maxPFN := src.MaxPFN(); maxPFN == 0 || maxPFN > math.MaxUint32 {
		return checked{}, fmt.Errorf("diskdump: writer: max_pfn %d is not in 1..2^32-1: %w", maxPFN, diskdump.ErrCorrupt)
	}
	if deviceBlocks > math.MaxUint32 {
		return checked{}, fmt.Errorf("diskdump: writer: %d device blocks exceed the 32-bit device_blocks: %w", deviceBlocks, diskdump.ErrCorrupt)
	}
	nr := cfg.NrCPUs
	if nr == 0 {
		nr = 1
	}
	ncpu := max(nr, cfg.CurrentCPU+1, len(cfg.Tasks))
	l := diskdump.LayoutOf(a)
	if nr < 0 || cfg.CurrentCPU < 0 || l.HeaderFixedSize()+l.WordSize()*ncpu > bs {
		return checked{}, fmt.Errorf("diskdump: writer: nr_cpus %d, current_cpu %d, %d tasks do not fit the header block: %w", nr, cfg.CurrentCPU, len(cfg.Tasks), diskdump.ErrCorrupt)
	}
	if a == diskdump.ArchIA64 && a.GRegsSize()+8*len(cfg.SwitchStacks) > bs || len(cfg.Regs)*l.WordSize() > a.GRegsSize() {
		return checked{}, fmt.Errorf("diskdump: writer: %d registers, %d switch stacks do not fit the %v sub-header: %w", len(cfg.Regs), len(cfg.SwitchStacks), a, diskdump.ErrCorrupt)
	}
	return checked{layout: l, blockSize: bs, nrCPUs: nr, ncpu: ncpu}, nil
}

// header is the dump header of a run before its first write: the fields
// that do not change while the kernel dumps.
func (cfg Config) header(c checked, maxPFN, ram uint64, g diskdump.Geometry) diskdump.Header {
	uts := cfg.Utsname
	if uts == (diskdump.Utsname{}) {
		uts = DefaultUtsname(cfg.Arch)
	}
	tasks := make([]uint64, c.ncpu)
	copy(tasks, cfg.Tasks)
	var sec, nsec int64
	if !cfg.Time.IsZero() {
		sec, nsec = cfg.Time.Unix(), int64(cfg.Time.Nanosecond())
	}
	return diskdump.Header{Layout: c.layout, Signature: diskdump.DumpSignature, Version: 0, Utsname: uts, Sec: sec, Frac: nsec,
		BlockSize: int32(c.blockSize), SubHdrSize: int32(g.SubHdrBlocks), MaxMapnr: uint32(maxPFN),
		TotalRAMBlocks: uint32(ram), CurrentCPU: uint32(cfg.CurrentCPU), NrCPUs: int32(c.nrCPUs), Tasks: tasks}
}
