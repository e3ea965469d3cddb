// Package diskdump reads, checks and formats the dump partition of Red Hat's
// diskdump crash-dump facility (RHEL3/RHEL4): the disk area the kernel
// module writes at panic time and savecore reads after the reboot.
//
// The package is a pure codec: it reads from an io.ReaderAt of an explicit
// size and writes to an io.WriterAt, opens no files, makes no system calls
// and never logs. Byte order and word size are data, chosen once from a
// header (or an Arch) and kept. The format is described in this
// repository's doc/FORMAT.md; comments cite its sections as doc/FORMAT.md
// §n, and [REC] marks a choice of ours where the original behaviour is
// unknown (doc/FORMAT.md §13).
//
// # Partition layout
//
// Block n is bytes [n*B, (n+1)*B), where B is the page size of the machine
// that crashed (doc/FORMAT.md §2):
//
//	block 0                  format signature ("diskdump" + word pattern), or a swap header
//	block 1                  dump header ("DISKDUMP", doc/FORMAT.md §4), zero-padded
//	block 2 .. 1+S           architecture sub-header, registers (S = sub_hdr_size = 1)
//	block 2+S .. 1+S+R       bitmap 1, indexed by PFN: 1 = the page is RAM
//	block 2+S+R .. 1+S+2R    bitmap 2, only for partial or compressed dumps:
//	                         dense, bit k = the k-th RAM page was dumped
//	block 2+S+bitmap_blocks  data area: one raw page per block in PFN order, or
//	        ...              records {page_flags u64, size u32, flags u32,
//	                         data[size]} packed back to back, zlib or raw, the
//	                         last block padded with 'm' (doc/FORMAT.md §6.3)
//	block written_blocks     first block the kernel did not write
//
// Formatting fills every block with a signature derived from its block
// number (doc/FORMAT.md §3.1); a block that still carries its own signature
// was never written by a dump.
//
// # Entry points
//
// Reading a dump: OpenPartition reads the header, sub-header and bitmaps
// and returns a Partition; Partition.Pages yields the recoverable pages in
// PFN order, and a *PageError wrapping a *LostError for every run of pages
// that could not be recovered (Partition.Stats counts both). A damaged
// record stream is picked up again where possible (resynchronisation), and
// an interrupted dump is read as far as what is on the disk allows.
// Partition.PageReader reads single pages by PFN (the kernel log of a dump
// is found that way, package dmesg).
//
// Decoding pieces: ParseHeader (block 1, with sanity checks against the
// device), DecodeSubHeader, Bitmap and DenseToPFN, Page.Decompress and
// Inflate, PutRecordHeader (the record header encoder, for writers).
//
// Formatting and checking a partition, as diskdumpfmt does
// (doc/FORMAT.md §11.1): FormatInitial, FormatNormal, CheckPartition,
// InvalidateDump; the kernel's module parameters are ModuleParams and
// /proc/diskdump is parsed by ParseProcDiskdump.
//
// The vmcore files made from a partition are in package vmcore; what the
// kernel module writes at panic time is emulated by package diskdump/kernel.
package diskdump
