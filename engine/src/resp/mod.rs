//! RESP, the Redis wire protocol: the request parser that turns client bytes
//! into argument vectors, and the reply writer that encodes answers in RESP2
//! or RESP3 as the connection negotiated with HELLO.

mod parser;
mod reply;

pub use parser::{split_args, ParseLimits, ProtocolError, RequestParser};
pub use reply::ReplyBuf;
