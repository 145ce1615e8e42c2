//! One file per strategy, each opening with its rule.

pub mod calm;
pub mod d3;
pub mod drop_layer;
pub mod early_exit;
pub mod fixed_set;
pub mod full;
pub mod hsd;
pub mod oracle;
pub mod random;
pub mod searched;
pub mod skipdecode;
pub mod static_skip;
