// Package vmcore writes and reads the vmcore files made from a diskdump
// partition: the files crash, libkdumpfile and makedumpfile open, as
// opposed to the dump partition itself (package diskdump).
//
// Write converts the dump on a *diskdump.Partition into one vmcore in a
// single pass, in PFN order, with bounded memory; Options chooses the
// Format (ParseFormat reads its name, DefaultFormat is what savecore
// wrote) and its variants: the Compression of a KDUMP file
// (ParseCompression: zlib, lzo, snappy, zstd) and a DumpLevel that leaves
// out more pages by diskdump's dump_level rules. Result says what was
// stored, excluded and lost, and EstimateSize bounds the disk space
// beforehand. Open reads a vmcore of any of the three formats back as a
// *File (ReadPage, Pages), and WriteFile writes a DISKDUMP or KDUMP
// vmcore anew, filtered by a DumpLevel (dumpfilter).
//
// Like diskdump, vmcore is pure: it writes to io.WriterAt and reads from
// io.ReaderAt with an explicit size, opens no files and never logs. The
// format reference is doc/FORMAT.md in the repository; comments cite its
// sections (§n), and [REC] marks a decision of ours where the original
// behaviour is unknown.
//
// B is the page size of the dumped machine (the partition's block size).
//
// # ELF vmcore (FormatELF; uncompressed dumps, netdump style, §10.1)
//
//	Elf32/64_Ehdr | Phdr PT_NOTE | Phdr PT_LOAD (p_offset = H, p_paddr 0, p_align = B)
//	notes: CORE NT_PRSTATUS, NT_PRPSINFO, NT_TASKSTRUCT, NT_DISKDUMP
//	padding to H (a multiple of B)
//	H + pfn*B: page pfn; holes, excluded and lost pages are sparse holes
//
// # DISKDUMP vmcore (compressed dumps, §10.2) and KDUMP vmcore (makedumpfile, §10.3)
//
//	block 0                 disk_dump_header (DISKDUMP: header_version 1;
//	                        KDUMP: "KDUMP   ", header_version 6)
//	block 1 .. S            sub-header (KDUMP: kdump_sub_header)
//	block 1+S .. S+R        bitmap 1, PFN-indexed: pages of RAM
//	block 1+S+R .. S+2R     bitmap 2, PFN-indexed: pages stored in the file
//	(1+S+2R)*B              page_desc table: {offset s64, size u32, flags u32,
//	                        page_flags u64} per set bit of bitmap 2, PFN order
//	                        page data (raw pages, or DISKDUMP: zlib; KDUMP: zlib,
//	                        LZO, snappy or zstd, as page_desc.flags says)
//
// R is the number of blocks of one bitmap, ceil(ceil(max_mapnr/8)/B).
// The page data of a DISKDUMP file are the partition's records as they
// are; a KDUMP file compresses raw pages itself and may let every zero
// page share one copy.
//
// # Flattened streams (makedumpfile -F, doc/FLATTENED.md)
//
//	start block (4096 bytes): "makedumpfile\0\0\0\0", type 1, version 1
//	record: {offset s64 BE, size s64 BE} then size bytes for that offset
//	...
//	end marker: {-1, -1}
//
// A flattened stream is any of the files above cut into positioned
// records, so that it can go through a pipe or onto a raw partition (the
// kdump raw target). IsFlattened recognises one; NewFlattenedReader walks
// its records within the stream's bounds, ending where it is torn;
// Rearrange applies them to a seekable file as makedumpfile -R does and
// reports which byte ranges arrived; NewFlattenedWriter turns the
// positioned writes of any writer here into a stream on an io.Writer.
package vmcore
