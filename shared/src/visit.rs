//! Visit records and their canonical signing bytes (owned by the client work, issue 3).
