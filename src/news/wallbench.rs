//! `beffroi bench wall` (filled in below).
