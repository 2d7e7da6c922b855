//! What every channel refuses in a file: more than 20 MB, and executables, found by name,
//! declared type or first bytes (whatever the sender claims).

/// Largest attachment on any channel.
pub const MAX_ATTACHMENT_BYTES: u64 = 20 * 1024 * 1024;

/// File name endings refused as executables.
const EXECUTABLE_EXTENSIONS: [&str; 20] = [
    "exe", "dll", "com", "bat", "cmd", "msi", "scr", "ps1", "vbs", "vbe", "js", "jse", "wsf", "sh", "jar",
    "apk", "app", "elf", "bin", "pif",
];

/// MIME types refused as executables.
const EXECUTABLE_TYPES: [&str; 10] = [
    "application/x-msdownload",
    "application/x-msdos-program",
    "application/x-dosexec",
    "application/vnd.microsoft.portable-executable",
    "application/x-executable",
    "application/x-elf",
    "application/x-mach-binary",
    "application/x-sh",
    "application/java-archive",
    "application/vnd.android.package-archive",
];

/// True when the last path segment of `name` (a file name or URL path) ends like an
/// executable's.
pub fn executable_name(name: &str) -> bool {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    last.rsplit_once('.').is_some_and(|(_, extension)| {
        EXECUTABLE_EXTENSIONS.contains(&extension.to_ascii_lowercase().as_str())
    })
}

/// True when the declared MIME type is an executable's.
pub fn executable_type(mime_type: &str) -> bool {
    let mime = mime_type.trim().to_ascii_lowercase();
    EXECUTABLE_TYPES.iter().any(|known| mime.starts_with(known))
}

/// True when `head` (the first bytes of a file) starts like an executable: PE (`MZ`), ELF,
/// Mach-O, a Java class / fat Mach-O, or a script with a shebang.
pub fn executable_head(head: &[u8]) -> bool {
    const MAGIC: [&[u8]; 8] = [
        b"MZ",
        b"\x7fELF",
        b"#!",
        &[0xfe, 0xed, 0xfa, 0xce],
        &[0xfe, 0xed, 0xfa, 0xcf],
        &[0xcf, 0xfa, 0xed, 0xfe],
        &[0xce, 0xfa, 0xed, 0xfe],
        &[0xca, 0xfe, 0xba, 0xbe],
    ];
    MAGIC.iter().any(|magic| head.starts_with(magic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_are_found_by_name_type_or_first_bytes() {
        assert!(executable_name("setup.EXE"));
        assert!(executable_name("https://cdn.test/files/run.sh"));
        assert!(executable_name("C:\\x\\tool.bat"));
        assert!(!executable_name("invoice.pdf"));
        assert!(!executable_name("README"));
        assert!(executable_type("application/x-msdownload"));
        assert!(executable_type(" Application/Java-Archive "));
        assert!(!executable_type("image/png"));
        assert!(executable_head(b"MZ\x90\x00"));
        assert!(executable_head(b"\x7fELF\x02"));
        assert!(executable_head(b"#!/bin/sh\n"));
        assert!(!executable_head(b"%PDF-1.7"));
        assert!(!executable_head(b"\x89PNG\r\n"));
    }
}
