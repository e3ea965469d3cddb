// Package kernel reproduces what the RHEL4 diskdump kernel module writes to
// a dump partition when the machine panics, write for write, so that
// rehearsals (dumpformat -R), test fixtures and savecore's tests get
// partitions as a real crash leaves them, including power cuts, full
// partitions and refused devices. It is not used to save a dump.
//
// WriteDump takes the partition (ReadWriterAt and its size in blocks), the
// memory of the crashed machine (a MemorySource) and the module parameters
// and crash context (Config; DefaultConfig gives the module's defaults). It
// returns a Result: the Outcome, the header that last reached the
// partition, which pages were saved and the kernel's console lines. Two
// memory sources are provided: NewSyntheticMachine builds a deterministic
// machine of any size from a seed, and NewELFCoreSource reads the memory of
// a real machine from an ELF core (QEMU dump-guest-memory, /proc/vmcore).
//
// # Order of reads and writes
//
// B is the block size (the page size), S the sub-header blocks, R the
// blocks of one bitmap; doc/FORMAT.md §2 draws the partition, §3.2-§3.4,
// §4.4-§4.5 and §6 the rules followed here.
//
//	read   block 0                     swap header for exactly this device?
//	read   sampled chunks              else: format signatures (check_dump_partition)
//	write  block 1                     header, INCOMPLETED, written_blocks 2
//	write  blocks 2 .. 1+S             sub-header (registers)
//	write  bitmap 1, a block a time    PFN-indexed RAM bitmap
//	write  bitmap 2 (zeroed)           partial or compressed dumps only
//	write  block 1                     header, written_blocks past the bitmaps
//	       memory pass, PFN order, for each RAM page:
//	write    bitmap 2 block            when its dense bits fill a block
//	write    data chunk                raw: 1<<block_order pages; compressed:
//	                                   records {flags, size, zlib or raw page},
//	                                   2^max(block_order,2)-2 blocks a write
//	write    block 1                   IN_PROGRESS, after the first data chunk
//	                                   that follows a bitmap 2 block
//	write  last data chunk             compressed: padded with 'm' to a block
//	write  last bitmap 2 block
//	write  block 1                     COMPLETED, SHORT_AREA or INCOMPLETED
//
// Strict mode (dump_level 0, no compression) has one bitmap and never
// rewrites the header during the pass. Config.StopAfterBlocks cuts the
// power after that many blocks, in the middle of a write if need be.
package kernel
