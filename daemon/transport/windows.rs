//! The Windows side of `transport`: a named pipe (`\\.\pipe\hoard-<16 hex>`), every instance
//! created with a security descriptor whose DACL admits only the daemon's own user
//! (`D:P(A;;GA;;;<user SID>)`), remote clients rejected, and each client's user checked again
//! from its process token (`GetNamedPipeClientProcessId`).
//!
//! Must not: be named outside `transport`.

use std::ffi::c_void;
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};
use tracing::warn;
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetLengthSid, GetTokenInformation, SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::System::Pipes::GetNamedPipeClientProcessId;
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
};

use super::{Conn, Peer};
use crate::error::HoardError;

/// The pipe's name and the security descriptor every instance is created with.
pub struct Listener {
    name: PathBuf,
    security: Arc<Security>,
    first: NamedPipeServer,
}

/// A security descriptor made by `ConvertStringSecurityDescriptorToSecurityDescriptorW`,
/// freed with `LocalFree`, and the user SID it admits.
struct Security {
    descriptor: *mut c_void,
    user_sid: Vec<u8>,
}

// SAFETY: the descriptor is immutable once made and only read by CreateNamedPipeW.
unsafe impl Send for Security {}
// SAFETY: as above.
unsafe impl Sync for Security {}

impl Drop for Security {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(self.descriptor) };
    }
}

impl Security {
    fn for_current_user() -> std::io::Result<Security> {
        // SAFETY: the pseudo-handle of this process needs no closing.
        let user_sid = process_user_sid(unsafe { GetCurrentProcess() })?;
        let mut text: *mut u16 = std::ptr::null_mut();
        // SAFETY: a valid SID buffer; the string is freed with LocalFree below.
        if unsafe { ConvertSidToStringSidW(user_sid.as_ptr() as *mut c_void, &mut text) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a NUL-terminated wide string from the call above.
        let sid = unsafe { wide_to_string(text) };
        unsafe { LocalFree(text as *mut c_void) };
        // Protected DACL: generic all to the user, nothing inherited, no one else.
        let sddl: Vec<u16> = format!("D:P(A;;GA;;;{sid})")
            .encode_utf16()
            .chain([0])
            .collect();
        let mut descriptor: *mut c_void = std::ptr::null_mut();
        // SAFETY: a NUL-terminated SDDL string; the descriptor is owned by the result.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Security {
            descriptor,
            user_sid,
        })
    }

    /// A new pipe instance with this descriptor.
    fn create(&self, name: &Path, first: bool) -> std::io::Result<NamedPipeServer> {
        let mut attrs = SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.descriptor,
            bInheritHandle: 0,
        };
        // SAFETY: `attrs` and the descriptor outlive the call.
        unsafe {
            ServerOptions::new()
                .first_pipe_instance(first)
                .reject_remote_clients(true)
                .create_with_security_attributes_raw(
                    name,
                    &mut attrs as *mut SECURITY_ATTRIBUTES as *mut c_void,
                )
        }
    }
}

/// # Safety
/// `p` must point at a NUL-terminated UTF-16 string.
unsafe fn wide_to_string(p: *const u16) -> String {
    let mut n = 0;
    // SAFETY: as the caller promises.
    while unsafe { *p.add(n) } != 0 {
        n += 1;
    }
    // SAFETY: `n` units were just read.
    String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, n) })
}

/// The user SID (its bytes) of `process`'s token.
fn process_user_sid(process: HANDLE) -> std::io::Result<Vec<u8>> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: a process handle with query rights; the token is closed below.
    if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 256];
    let mut len = 0u32;
    // SAFETY: a valid token and a buffer of the size given.
    let ok = unsafe {
        GetTokenInformation(
            token,
            TokenUser,
            buf.as_mut_ptr() as *mut c_void,
            buf.len() as u32,
            &mut len,
        )
    };
    let err = std::io::Error::last_os_error();
    // SAFETY: opened above.
    unsafe { CloseHandle(token) };
    if ok == 0 {
        return Err(err);
    }
    // SAFETY: the call filled a TOKEN_USER at the start of the buffer; its SID points into it.
    let user = unsafe { &*(buf.as_ptr() as *const TOKEN_USER) };
    let sid = user.User.Sid;
    // SAFETY: a valid SID.
    let n = unsafe { GetLengthSid(sid) } as usize;
    // SAFETY: the SID is `n` bytes long.
    Ok(unsafe { std::slice::from_raw_parts(sid as *const u8, n) }.to_vec())
}

/// The process at the other end of `pipe`, and whether it runs as `user_sid`.
fn client_of(pipe: &NamedPipeServer, user_sid: &[u8]) -> std::io::Result<(u32, bool)> {
    let mut pid = 0u32;
    // SAFETY: a connected pipe handle.
    if unsafe { GetNamedPipeClientProcessId(pipe.as_raw_handle() as HANDLE, &mut pid) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: any pid; a null handle is an error.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    let sid = process_user_sid(process);
    // SAFETY: opened above.
    unsafe { CloseHandle(process) };
    Ok((pid, sid? == user_sid))
}

/// Create the pipe's first instance: failing if another daemon already serves this name.
pub fn bind(name: &Path) -> Result<Listener, HoardError> {
    let security = Security::for_current_user()
        .map_err(|e| HoardError::io("making the pipe's security descriptor for", name, e))?;
    let first = security
        .create(name, true)
        .map_err(|e| HoardError::io("creating the named pipe", name, e))?;
    Ok(Listener {
        name: name.to_path_buf(),
        security: Arc::new(security),
        first,
    })
}

/// Nothing to remove: a pipe goes with its last handle.
pub fn unbind(_name: &Path) {}

/// Each client as it connects (a new instance is made ready before it is handed on);
/// clients of another user are refused and logged.
pub fn incoming(
    listener: Listener,
) -> impl tokio_stream::Stream<Item = std::io::Result<Conn<NamedPipeServer>>> {
    let Listener {
        name,
        security,
        first,
    } = listener;
    futures_util::stream::unfold(Some(first), move |next| {
        let (name, security) = (name.clone(), security.clone());
        async move {
            let mut server = next?;
            loop {
                if let Err(e) = server.connect().await {
                    warn!(error = %e, "a pipe client failed to connect");
                    server = security.create(&name, false).ok()?;
                    continue;
                }
                let connected = server;
                server = match security.create(&name, false) {
                    Ok(s) => s,
                    Err(e) => return Some((Err(e), None)),
                };
                match client_of(&connected, &security.user_sid) {
                    Ok((pid, true)) => {
                        let peer = Peer {
                            uid: None,
                            pid: Some(pid),
                            same_user: true,
                        };
                        return Some((
                            Ok(Conn {
                                io: connected,
                                peer,
                            }),
                            Some(server),
                        ));
                    }
                    Ok((pid, false)) => warn!(pid, "refused a pipe client of another user"),
                    Err(e) => warn!(error = %e, "refused a pipe client whose user is unknown"),
                }
            }
        }
    })
}
