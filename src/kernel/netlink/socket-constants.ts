/** Socket constants (Linux x86-64/arm64 values) shared by the netlink sockets. */
export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SOL_NETLINK = 270;
export const MSG_TRUNC = 0x20;
