//! Test harness: the emulator (moto's server plus retrain's extension) on a
//! loopback port, AWS resources created in it through the real SDK, and
//! drivers that deliver events to the handlers the way SQS and EventBridge do.

pub mod crash;
pub mod emulator;
pub mod world;

pub use emulator::Emulator;
pub use world::World;
