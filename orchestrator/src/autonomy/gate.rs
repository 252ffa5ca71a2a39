//! The gates that can refuse a fix before it starts, in the order they are asked. The [`Gate`]
//! enum is part of the incident record ([`crate::record::gate`]), re-exported here.

pub use crate::record::gate::Gate;
