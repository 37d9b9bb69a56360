// Mirrors include/uapi/linux/stat.h (Linux 6.8): file type and permission bits of i_mode.

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

export const S_IRWXU = 0o700;
export const S_IRUSR = 0o400;
export const S_IWUSR = 0o200;
export const S_IXUSR = 0o100;
export const S_IRWXG = 0o070;
export const S_IRGRP = 0o040;
export const S_IWGRP = 0o020;
export const S_IXGRP = 0o010;
export const S_IRWXO = 0o007;
export const S_IROTH = 0o004;
export const S_IWOTH = 0o002;
export const S_IXOTH = 0o001;

// include/linux/stat.h
export const S_IRUGO = S_IRUSR | S_IRGRP | S_IROTH;
export const S_IWUGO = S_IWUSR | S_IWGRP | S_IWOTH;
export const S_IXUGO = S_IXUSR | S_IXGRP | S_IXOTH;
export const S_IRWXUGO = S_IRWXU | S_IRWXG | S_IRWXO;

export function S_ISREG(m: number): boolean {
  return (m & S_IFMT) === S_IFREG;
}
export function S_ISDIR(m: number): boolean {
  return (m & S_IFMT) === S_IFDIR;
}
export function S_ISCHR(m: number): boolean {
  return (m & S_IFMT) === S_IFCHR;
}
export function S_ISLNK(m: number): boolean {
  return (m & S_IFMT) === S_IFLNK;
}
