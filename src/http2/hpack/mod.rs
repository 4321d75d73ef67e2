//! HPACK, header compression for HTTP/2 (RFC 7541): an incremental, lenient decoder ([`Decoder`]), the
//! static and dynamic tables, and the Huffman code.

mod decoder;
pub mod huffman;
mod table;

pub use decoder::{DEFAULT_TABLE_SIZE, Decoder, Field, HpackError, Notice, Sink, integer, static_name};
pub use table::{ENTRY_OVERHEAD, STATIC, Table, entry_size};
