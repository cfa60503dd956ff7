//! Hostile and broken inputs: each must be refused with an error that names
//! the problem, never a panic.
