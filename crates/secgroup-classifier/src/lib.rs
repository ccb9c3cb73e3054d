//! Turns a first-match rule list into the bit-vector tables the eBPF data
//! plane looks packets up in, and simulates that lookup. Pure: no I/O.
