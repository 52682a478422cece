//! The C ABI of `include/cert_authz.h`.  The types come from bindgen over
//! that header (see build.rs), so a change to the header that this file
//! does not follow fails to compile.
//!
//! Every export runs its body inside [`guard`]: a panic becomes
//! CERT_AUTHZ_ERR_PANIC instead of unwinding into the server.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
// The exports are called from C, where `unsafe` means nothing: the pointer
// rules each caller must follow are the header's, and every pointer is
// checked for NULL here before it is used.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use log::{Level, LevelFilter};

use crate::attr::Attr;
use crate::decide::{Decision, Peer, Policy, Reason};
use std::sync::Arc;

use crate::identity::{Identity, Presented};
use crate::logging::{self, Sink};
use crate::policy::PolicyBuilder;
use crate::report::{self, LineKind};

mod sys {
    #![allow(non_camel_case_types, non_upper_case_globals, dead_code, non_snake_case)]
    include!(concat!(env!("OUT_DIR"), "/cert_authz_sys.rs"));
}

pub use sys::{
    cert_authz_decision, cert_authz_identity, cert_authz_line_kind, cert_authz_log_callback,
    cert_authz_log_level, cert_authz_peer, cert_authz_policy, cert_authz_policy_builder, cert_authz_reason,
    cert_authz_result,
};

/// What a `cert_authz_identity *` points to: one owner's share of a
/// presented certificate (see cert_authz_identity_clone).
type IdentityHandle = Arc<Presented>;

type R = cert_authz_result;

/// Runs an export's body; a panic is contained and reported.
fn guard(body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(R::CERT_AUTHZ_ERR_PANIC)
}

/// The guard for exports that return a static string: a panic gives
/// `fallback`.
fn guard_str(fallback: &'static str, body: impl FnOnce() -> *const c_char) -> *const c_char {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback.as_ptr() as *const c_char)
}

/// An add to a builder: a panic while reading a source leaves the builder
/// unable to build, so a half-read policy never becomes a policy.
fn guard_add(builder: *mut cert_authz_policy_builder, what: &str, body: impl FnOnce() -> R) -> R {
    let result = guard(body);
    if result == R::CERT_AUTHZ_ERR_PANIC {
        // SAFETY: a handle this library made (or NULL, which is checked), as the header requires.
        if let Ok(builder) = unsafe { builder_mut(builder) } {
            let _ = catch_unwind(AssertUnwindSafe(|| builder.poison(what)));
        }
    }
    result
}

/// A borrowed byte buffer; NULL is allowed only for length 0.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        Some(&[])
    } else if ptr.is_null() {
        None
    } else {
        Some(std::slice::from_raw_parts(ptr, len))
    }
}

unsafe fn text<'a>(ptr: *const c_char, len: usize) -> Result<&'a str, R> {
    let raw = bytes(ptr as *const u8, len).ok_or(R::CERT_AUTHZ_ERR_NULL_POINTER)?;
    std::str::from_utf8(raw).map_err(|_| R::CERT_AUTHZ_ERR_INVALID_ARGUMENT)
}

/// Hands a value to C as an opaque handle.
fn into_handle<T, H>(value: T) -> *mut H {
    Box::into_raw(Box::new(value)) as *mut H
}

macro_rules! try_r {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(code) => return code,
        }
    };
}

#[no_mangle]
pub extern "C" fn cert_authz_version() -> *const c_char {
    guard_str("unknown\0", || concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char)
}

#[no_mangle]
pub extern "C" fn cert_authz_result_name(result: cert_authz_result) -> *const c_char {
    guard_str("CERT_AUTHZ_ERR_UNKNOWN\0", || result_name(result).as_ptr() as *const c_char)
}

fn result_name(result: cert_authz_result) -> &'static str {
    match result {
        R::CERT_AUTHZ_OK => "CERT_AUTHZ_OK\0",
        R::CERT_AUTHZ_ERR_NULL_POINTER => "CERT_AUTHZ_ERR_NULL_POINTER\0",
        R::CERT_AUTHZ_ERR_INVALID_ARGUMENT => "CERT_AUTHZ_ERR_INVALID_ARGUMENT\0",
        R::CERT_AUTHZ_ERR_POLICY => "CERT_AUTHZ_ERR_POLICY\0",
        R::CERT_AUTHZ_ERR_IO => "CERT_AUTHZ_ERR_IO\0",
        R::CERT_AUTHZ_ERR_BAD_CERTIFICATE => "CERT_AUTHZ_ERR_BAD_CERTIFICATE\0",
        R::CERT_AUTHZ_ERR_NOT_FOUND => "CERT_AUTHZ_ERR_NOT_FOUND\0",
        R::CERT_AUTHZ_ERR_BUFFER_TOO_SMALL => "CERT_AUTHZ_ERR_BUFFER_TOO_SMALL\0",
        R::CERT_AUTHZ_ERR_PANIC => "CERT_AUTHZ_ERR_PANIC\0",
        _ => "CERT_AUTHZ_ERR_UNKNOWN\0",
    }
}

fn reason_from_c(reason: cert_authz_reason) -> Option<Reason> {
    use cert_authz_reason as C;
    Some(match reason {
        C::CERT_AUTHZ_REASON_ALLOW_RULE => Reason::AllowRule,
        C::CERT_AUTHZ_REASON_NO_MATCHING_RULE => Reason::NoMatchingRule,
        C::CERT_AUTHZ_REASON_DENY_RULE => Reason::DenyRule,
        C::CERT_AUTHZ_REASON_KEY_REJECTED => Reason::KeyRejected,
        C::CERT_AUTHZ_REASON_LIFETIME_TOO_LONG => Reason::LifetimeTooLong,
        C::CERT_AUTHZ_REASON_NO_CERTIFICATE => Reason::NoCertificate,
        C::CERT_AUTHZ_REASON_UNVERIFIED => Reason::Unverified,
        C::CERT_AUTHZ_REASON_BAD_CERTIFICATE => Reason::BadCertificate,
        C::CERT_AUTHZ_REASON_BAD_PATH => Reason::BadPath,
        C::CERT_AUTHZ_REASON_BAD_METHOD => Reason::BadMethod,
        C::CERT_AUTHZ_REASON_INTERNAL_ERROR => Reason::InternalError,
        C::CERT_AUTHZ_REASON_USER_AMBIGUOUS => Reason::UserAmbiguous,
        _ => return None,
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_reason_text(reason: cert_authz_reason) -> *const c_char {
    guard_str("unknown reason\0", || reason_c_text(reason))
}

/// Static NUL-terminated copies of Reason::text.
fn reason_c_text(reason: cert_authz_reason) -> *const c_char {
    macro_rules! c_texts {
        ($($variant:ident),*) => {
            match reason_from_c(reason) {
                $(Some(Reason::$variant) => {
                    static TEXT: once_cell::sync::Lazy<Vec<u8>> = once_cell::sync::Lazy::new(|| {
                        let mut t = Reason::$variant.text().as_bytes().to_vec();
                        t.push(0);
                        t
                    });
                    TEXT.as_ptr() as *const c_char
                })*
                None => "unknown reason\0".as_ptr() as *const c_char,
            }
        };
    }
    c_texts!(
        AllowRule,
        NoMatchingRule,
        DenyRule,
        KeyRejected,
        LifetimeTooLong,
        NoCertificate,
        Unverified,
        BadCertificate,
        BadPath,
        BadMethod,
        InternalError,
        UserAmbiguous
    )
}

fn deliver_to_c(sink: &Sink, level: Level, message: &str) {
    let level = match level {
        Level::Error => cert_authz_log_level::CERT_AUTHZ_LOG_ERROR,
        Level::Warn => cert_authz_log_level::CERT_AUTHZ_LOG_WARN,
        Level::Info => cert_authz_log_level::CERT_AUTHZ_LOG_INFO,
        Level::Debug => cert_authz_log_level::CERT_AUTHZ_LOG_DEBUG,
        Level::Trace => cert_authz_log_level::CERT_AUTHZ_LOG_TRACE,
    };
    // SAFETY: `target` was made from a non-NULL cert_authz_log_callback in
    // cert_authz_set_log_callback, and function pointers fit in usize.
    let callback: unsafe extern "C" fn(*mut c_void, cert_authz_log_level, *const c_char, usize) =
        unsafe { std::mem::transmute(sink.target) };
    // SAFETY: the callback is the caller's, with its own userdata; message outlives the call.
    unsafe {
        callback(sink.userdata as *mut c_void, level, message.as_ptr() as *const c_char, message.len())
    };
}

#[no_mangle]
pub extern "C" fn cert_authz_set_log_callback(
    cb: cert_authz_log_callback,
    userdata: *mut c_void,
    max_level: cert_authz_log_level,
) -> cert_authz_result {
    guard(|| {
        use cert_authz_log_level as L;
        let max = match max_level {
            L::CERT_AUTHZ_LOG_ERROR => LevelFilter::Error,
            L::CERT_AUTHZ_LOG_WARN => LevelFilter::Warn,
            L::CERT_AUTHZ_LOG_INFO => LevelFilter::Info,
            L::CERT_AUTHZ_LOG_DEBUG => LevelFilter::Debug,
            L::CERT_AUTHZ_LOG_TRACE => LevelFilter::Trace,
            _ => return R::CERT_AUTHZ_ERR_INVALID_ARGUMENT,
        };
        let sink =
            cb.map(|f| Sink { deliver: deliver_to_c, target: f as usize, userdata: userdata as usize });
        logging::install(sink, max);
        R::CERT_AUTHZ_OK
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_policy_builder_new(
    builder_out: *mut *mut cert_authz_policy_builder,
) -> cert_authz_result {
    guard(|| {
        if builder_out.is_null() {
            return R::CERT_AUTHZ_ERR_NULL_POINTER;
        }
        // SAFETY: the output pointer was checked for NULL; the header makes it writable.
        unsafe { *builder_out = into_handle(PolicyBuilder::new()) };
        R::CERT_AUTHZ_OK
    })
}

unsafe fn builder_mut<'a>(builder: *mut cert_authz_policy_builder) -> Result<&'a mut PolicyBuilder, R> {
    (builder as *mut PolicyBuilder).as_mut().ok_or(R::CERT_AUTHZ_ERR_NULL_POINTER)
}

/// The result of an add: the errors it added, if any, go to the caller's
/// buffer (so that a server reports them at its directive), and decide
/// POLICY or IO.
fn add_result(
    builder: &PolicyBuilder,
    errors_before: usize,
    error_buf: *mut c_char,
    error_buf_len: usize,
) -> R {
    let new = &builder.errors()[errors_before..];
    if new.is_empty() {
        return R::CERT_AUTHZ_OK;
    }
    write_error(error_buf, error_buf_len, &errors_text(new));
    if new.iter().any(|e| e.io) {
        R::CERT_AUTHZ_ERR_IO
    } else {
        R::CERT_AUTHZ_ERR_POLICY
    }
}

fn errors_text(errors: &[crate::policy::PolicyError]) -> String {
    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

#[no_mangle]
pub extern "C" fn cert_authz_policy_builder_add_file(
    builder: *mut cert_authz_policy_builder,
    path: *const c_char,
    path_len: usize,
    error_buf: *mut c_char,
    error_buf_len: usize,
) -> cert_authz_result {
    // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
    let what = unsafe { text(path, path_len) }.unwrap_or("(policy file)");
    guard_add(builder, what, || {
        // SAFETY: a handle this library made (or NULL, which is checked), as the header requires.
        let builder = try_r!(unsafe { builder_mut(builder) });
        // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
        let path = try_r!(unsafe { text(path, path_len) });
        if path.is_empty() {
            return R::CERT_AUTHZ_ERR_INVALID_ARGUMENT;
        }
        let before = builder.errors().len();
        builder.add_file(Path::new(path));
        add_result(builder, before, error_buf, error_buf_len)
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_policy_builder_add_statement(
    builder: *mut cert_authz_policy_builder,
    statement: *const c_char,
    statement_len: usize,
    origin: *const c_char,
    origin_len: usize,
    origin_line: u32,
    error_buf: *mut c_char,
    error_buf_len: usize,
) -> cert_authz_result {
    // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
    let what = unsafe { text(origin, origin_len) }.unwrap_or("(inline statement)");
    guard_add(builder, what, || {
        // SAFETY: a handle this library made (or NULL, which is checked), as the header requires.
        let builder = try_r!(unsafe { builder_mut(builder) });
        // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
        let statement = try_r!(unsafe { text(statement, statement_len) });
        // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
        let origin = try_r!(unsafe { text(origin, origin_len) });
        let before = builder.errors().len();
        builder.add_statement(statement, origin, origin_line);
        add_result(builder, before, error_buf, error_buf_len)
    })
}

/// Copies `message` into a C buffer, truncated to fit, NUL-terminated.
fn write_error(buf: *mut c_char, len: usize, message: &str) {
    if buf.is_null() || len == 0 {
        return;
    }
    let mut n = message.len().min(len - 1);
    while !message.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: buf was checked for NULL and holds buf_len bytes (the header's rule); n < buf_len.
    unsafe {
        std::ptr::copy_nonoverlapping(message.as_ptr(), buf as *mut u8, n);
        *buf.add(n) = 0;
    }
}

#[no_mangle]
pub extern "C" fn cert_authz_policy_builder_build(
    builder: *mut cert_authz_policy_builder,
    error_buf: *mut c_char,
    error_buf_len: usize,
    policy_out: *mut *mut cert_authz_policy,
) -> cert_authz_result {
    guard(|| {
        if builder.is_null() {
            return R::CERT_AUTHZ_ERR_NULL_POINTER;
        }
        // Taken back first, so the builder is freed whatever happens next.
        // SAFETY: the handle came from into_handle of this very type, and the header lets each be freed once.
        let builder = unsafe { Box::from_raw(builder as *mut PolicyBuilder) };
        if policy_out.is_null() {
            return R::CERT_AUTHZ_ERR_NULL_POINTER;
        }
        match builder.build() {
            Ok(policy) => {
                // SAFETY: the output pointer was checked for NULL; the header makes it writable.
                unsafe { *policy_out = into_handle(policy) };
                R::CERT_AUTHZ_OK
            }
            Err(errors) => {
                let io = errors.iter().any(|e| e.io);
                write_error(error_buf, error_buf_len, &errors_text(&errors));
                if io {
                    R::CERT_AUTHZ_ERR_IO
                } else {
                    R::CERT_AUTHZ_ERR_POLICY
                }
            }
        }
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_policy_builder_free(builder: *mut cert_authz_policy_builder) {
    if !builder.is_null() {
        let _ =
            // SAFETY: the handle came from into_handle of this very type, and the header lets each be freed once.
            catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(builder as *mut PolicyBuilder) })));
    }
}

unsafe fn policy_ref<'a>(policy: *const cert_authz_policy) -> Result<&'a Policy, R> {
    (policy as *const Policy).as_ref().ok_or(R::CERT_AUTHZ_ERR_NULL_POINTER)
}

unsafe fn presented_ref<'a>(identity: *const cert_authz_identity) -> Result<&'a Presented, R> {
    (identity as *const IdentityHandle).as_ref().map(|h| &**h).ok_or(R::CERT_AUTHZ_ERR_NULL_POINTER)
}

/// The identity of a handle whose certificate was accepted; a refused one
/// has no values (NOT_FOUND).
unsafe fn accepted_ref<'a>(identity: *const cert_authz_identity) -> Result<&'a Identity, R> {
    presented_ref(identity)?.identity().ok_or(R::CERT_AUTHZ_ERR_NOT_FOUND)
}

#[no_mangle]
pub extern "C" fn cert_authz_policy_rule_count(
    policy: *const cert_authz_policy,
    count_out: *mut usize,
) -> cert_authz_result {
    guard(|| {
        // SAFETY: a handle this library made (or NULL, which is checked), as the header requires.
        let policy = try_r!(unsafe { policy_ref(policy) });
        if count_out.is_null() {
            return R::CERT_AUTHZ_ERR_NULL_POINTER;
        }
        // SAFETY: the output pointer was checked for NULL; the header makes it writable.
        unsafe { *count_out = policy.rule_count() };
        R::CERT_AUTHZ_OK
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_policy_free(policy: *mut cert_authz_policy) {
    if !policy.is_null() {
        // SAFETY: the handle came from into_handle of this very type, and the header lets each be freed once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(policy as *mut Policy) })));
    }
}

fn identity_out(presented: Presented, out: *mut *mut cert_authz_identity) -> R {
    if let Some(why) = presented.refusal() {
        log::debug!("certificate refused: {why}");
    }
    // SAFETY: the output pointer was checked for NULL; the header makes it writable.
    unsafe { *out = into_handle::<IdentityHandle, _>(Arc::new(presented)) };
    R::CERT_AUTHZ_OK
}

#[no_mangle]
pub extern "C" fn cert_authz_identity_from_der(
    der: *const u8,
    der_len: usize,
    identity_out: *mut *mut cert_authz_identity,
) -> cert_authz_result {
    guard(|| {
        // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
        let der = try_r!(unsafe { bytes(der, der_len) }.ok_or(R::CERT_AUTHZ_ERR_NULL_POINTER));
        if identity_out.is_null() {
            return R::CERT_AUTHZ_ERR_NULL_POINTER;
        }
        self::identity_out(Presented::from_der(der), identity_out)
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_identity_from_der_chain(
    der: *const u8,
    der_len: usize,
    chain: *const *const u8,
    chain_lens: *const usize,
    chain_count: usize,
    identity_out: *mut *mut cert_authz_identity,
) -> cert_authz_result {
    guard(|| {
        // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
        let der = try_r!(unsafe { bytes(der, der_len) }.ok_or(R::CERT_AUTHZ_ERR_NULL_POINTER));
        if identity_out.is_null() || (chain_count > 0 && (chain.is_null() || chain_lens.is_null())) {
            return R::CERT_AUTHZ_ERR_NULL_POINTER;
        }
        let mut cas: Vec<&[u8]> = Vec::with_capacity(chain_count);
        for i in 0..chain_count {
            // SAFETY: the header makes chain and chain_lens arrays of chain_count elements, checked non-NULL above.
            let (ptr, len) = unsafe { (*chain.add(i), *chain_lens.add(i)) };
            // SAFETY: each (chain[i], chain_lens[i]) is a readable buffer of that length, as the header requires.
            cas.push(try_r!(unsafe { bytes(ptr, len) }.ok_or(R::CERT_AUTHZ_ERR_NULL_POINTER)));
        }
        self::identity_out(Presented::from_der_chain(der, &cas), identity_out)
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_identity_from_pem(
    pem: *const c_char,
    pem_len: usize,
    identity_out: *mut *mut cert_authz_identity,
) -> cert_authz_result {
    guard(|| {
        // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
        let pem = try_r!(unsafe { bytes(pem as *const u8, pem_len) }.ok_or(R::CERT_AUTHZ_ERR_NULL_POINTER));
        if identity_out.is_null() {
            return R::CERT_AUTHZ_ERR_NULL_POINTER;
        }
        self::identity_out(Presented::from_pem(pem), identity_out)
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_identity_refusal(
    identity: *const cert_authz_identity,
    why_out: *mut *const c_char,
    why_len_out: *mut usize,
) -> cert_authz_result {
    guard(|| {
        // SAFETY: a handle this library made (or NULL, which is checked), as the header requires.
        let presented = try_r!(unsafe { presented_ref(identity) });
        match presented.refusal() {
            Some(why) => str_out(&why.0, why_out, why_len_out),
            None => R::CERT_AUTHZ_ERR_NOT_FOUND,
        }
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_identity_clone(
    identity: *const cert_authz_identity,
    clone_out: *mut *mut cert_authz_identity,
) -> cert_authz_result {
    guard(|| {
        // SAFETY: a handle this library made (or NULL, which is checked), as the header requires.
        let handle = try_r!(
            unsafe { (identity as *const IdentityHandle).as_ref() }.ok_or(R::CERT_AUTHZ_ERR_NULL_POINTER)
        );
        if clone_out.is_null() {
            return R::CERT_AUTHZ_ERR_NULL_POINTER;
        }
        // SAFETY: the output pointer was checked for NULL; the header makes it writable.
        unsafe { *clone_out = into_handle::<IdentityHandle, _>(Arc::clone(handle)) };
        R::CERT_AUTHZ_OK
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_identity_is_certificate(
    identity: *const cert_authz_identity,
    cert: *const c_char,
    cert_len: usize,
    same_out: *mut i32,
) -> cert_authz_result {
    guard(|| {
        // SAFETY: a handle this library made (or NULL, which is checked), as the header requires.
        let presented = try_r!(unsafe { presented_ref(identity) });
        // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
        let cert =
            try_r!(unsafe { bytes(cert as *const u8, cert_len) }.ok_or(R::CERT_AUTHZ_ERR_NULL_POINTER));
        if same_out.is_null() {
            return R::CERT_AUTHZ_ERR_NULL_POINTER;
        }
        // SAFETY: the output pointer was checked for NULL; the header makes it writable.
        unsafe { *same_out = presented.is_same(cert) as i32 };
        R::CERT_AUTHZ_OK
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_identity_free(identity: *mut cert_authz_identity) {
    if !identity.is_null() {
        let _ =
            // SAFETY: the handle came from into_handle of this very type, and the header lets each be freed once.
            catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(identity as *mut IdentityHandle) })));
    }
}

/// Writes a borrowed string to a (pointer, length) output pair.
fn str_out(value: &str, ptr_out: *mut *const c_char, len_out: *mut usize) -> R {
    if ptr_out.is_null() || len_out.is_null() {
        return R::CERT_AUTHZ_ERR_NULL_POINTER;
    }
    // SAFETY: the output pointer was checked for NULL; the header makes it writable.
    unsafe {
        *ptr_out = value.as_ptr() as *const c_char;
        *len_out = value.len();
    }
    R::CERT_AUTHZ_OK
}

#[no_mangle]
pub extern "C" fn cert_authz_identity_subject(
    identity: *const cert_authz_identity,
    subject_out: *mut *const c_char,
    subject_len_out: *mut usize,
) -> cert_authz_result {
    guard(|| {
        // SAFETY: a handle this library made (or NULL, which is checked), as the header requires.
        let presented = try_r!(unsafe { presented_ref(identity) });
        match presented.identity() {
            Some(identity) => str_out(identity.subject_text(), subject_out, subject_len_out),
            None => R::CERT_AUTHZ_ERR_NOT_FOUND,
        }
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_identity_attr(
    identity: *const cert_authz_identity,
    attr: *const c_char,
    attr_len: usize,
    index: usize,
    value_out: *mut *const c_char,
    value_len_out: *mut usize,
) -> cert_authz_result {
    guard(|| {
        // SAFETY: a handle this library made (or NULL, which is checked), as the header requires.
        let presented = try_r!(unsafe { presented_ref(identity) });
        // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
        let name = try_r!(unsafe { text(attr, attr_len) });
        let Some(attr) = Attr::parse(name) else {
            return R::CERT_AUTHZ_ERR_INVALID_ARGUMENT;
        };
        let Some(identity) = presented.identity() else {
            return R::CERT_AUTHZ_ERR_NOT_FOUND;
        };
        match identity.values(attr).get(index) {
            Some(value) => str_out(value, value_out, value_len_out),
            None => R::CERT_AUTHZ_ERR_NOT_FOUND,
        }
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_identity_item(
    identity: *const cert_authz_identity,
    item: sys::cert_authz_item,
    value_out: *mut *const c_char,
    value_len_out: *mut usize,
) -> cert_authz_result {
    guard(|| {
        // SAFETY: a handle this library made (or NULL, which is checked), as the header requires.
        let identity = try_r!(unsafe { accepted_ref(identity) });
        let value = match item {
            sys::cert_authz_item::CERT_AUTHZ_ITEM_CLIENT_CERT => identity.client_cert(),
            sys::cert_authz_item::CERT_AUTHZ_ITEM_CLIENT_CERT_CHAIN => identity.client_cert_chain(),
            _ => return R::CERT_AUTHZ_ERR_INVALID_ARGUMENT,
        };
        if value.is_empty() {
            return R::CERT_AUTHZ_ERR_NOT_FOUND;
        }
        str_out(value, value_out, value_len_out)
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_identity_days_left(
    identity: *const cert_authz_identity,
    now: i64,
    days_out: *mut i64,
) -> cert_authz_result {
    guard(|| {
        // SAFETY: a handle this library made (or NULL, which is checked), as the header requires.
        let identity = try_r!(unsafe { accepted_ref(identity) });
        if days_out.is_null() {
            return R::CERT_AUTHZ_ERR_NULL_POINTER;
        }
        // SAFETY: the output pointer was checked for NULL; the header makes it writable.
        unsafe { *days_out = identity.days_left(now) };
        R::CERT_AUTHZ_OK
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_policy_next_group(
    policy: *const cert_authz_policy,
    identity: *const cert_authz_identity,
    cursor: *mut usize,
    name_out: *mut *const c_char,
    name_len_out: *mut usize,
) -> cert_authz_result {
    guard(|| {
        // SAFETY: a handle this library made (or NULL, which is checked), as the header requires.
        let policy = try_r!(unsafe { policy_ref(policy) });
        // SAFETY: as above.
        let presented = try_r!(unsafe { presented_ref(identity) });
        if cursor.is_null() || name_out.is_null() || name_len_out.is_null() {
            return R::CERT_AUTHZ_ERR_NULL_POINTER;
        }
        let Some(identity) = presented.identity() else {
            return R::CERT_AUTHZ_ERR_NOT_FOUND;
        };
        // SAFETY: checked for NULL above; the header makes it readable and writable.
        let from = unsafe { *cursor };
        let Some((group, name)) = policy.next_group_of(identity, from) else {
            return R::CERT_AUTHZ_ERR_NOT_FOUND;
        };
        // SAFETY: as above.
        unsafe { *cursor = group + 1 };
        str_out(name, name_out, name_len_out)
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_attr_export_name(
    attr: *const c_char,
    attr_len: usize,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> cert_authz_result {
    guard(|| {
        // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
        let name = try_r!(unsafe { text(attr, attr_len) });
        let Some(attr) = Attr::parse(name) else {
            return R::CERT_AUTHZ_ERR_INVALID_ARGUMENT;
        };
        if buf.is_null() || len_out.is_null() {
            return R::CERT_AUTHZ_ERR_NULL_POINTER;
        }
        let export = attr.export_name();
        if export.len() >= buf_len {
            return R::CERT_AUTHZ_ERR_BUFFER_TOO_SMALL;
        }
        write_error(buf, buf_len, &export);
        // SAFETY: the output pointer was checked for NULL; the header makes it writable.
        unsafe { *len_out = export.len() };
        R::CERT_AUTHZ_OK
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_identity_attr_by_variable(
    identity: *const cert_authz_identity,
    name: *const c_char,
    name_len: usize,
    value_out: *mut *const c_char,
    value_len_out: *mut usize,
) -> cert_authz_result {
    guard(|| {
        // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
        let name = try_r!(unsafe { text(name, name_len) });
        let Some((attr, index)) = Attr::parse_variable(name) else {
            return R::CERT_AUTHZ_ERR_INVALID_ARGUMENT;
        };
        if identity.is_null() {
            return R::CERT_AUTHZ_OK;
        }
        // SAFETY: a handle this library made, as the header requires (NULL was handled above).
        let identity = try_r!(unsafe { accepted_ref(identity) });
        let values = identity.values(attr);
        let value = match index {
            Some(i) => values.get(i),
            None if values.len() == 1 => values.first(),
            None => None,
        };
        match value {
            Some(value) => str_out(value, value_out, value_len_out),
            None => R::CERT_AUTHZ_ERR_NOT_FOUND,
        }
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_attr_check(attr: *const c_char, attr_len: usize) -> cert_authz_result {
    guard(|| {
        // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
        let name = try_r!(unsafe { text(attr, attr_len) });
        match Attr::parse(name) {
            Some(_) => R::CERT_AUTHZ_OK,
            None => R::CERT_AUTHZ_ERR_INVALID_ARGUMENT,
        }
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_decide(
    policy: *const cert_authz_policy,
    identity: *const cert_authz_identity,
    peer: cert_authz_peer,
    method: *const c_char,
    method_len: usize,
    path: *const c_char,
    path_len: usize,
    user_attr: *const c_char,
    user_attr_len: usize,
    decision_out: *mut cert_authz_decision,
) -> cert_authz_result {
    guard(|| {
        // SAFETY: a handle this library made (or NULL, which is checked), as the header requires.
        let policy = try_r!(unsafe { policy_ref(policy) });
        if decision_out.is_null() {
            return R::CERT_AUTHZ_ERR_NULL_POINTER;
        }
        let method =
            // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
            try_r!(unsafe { bytes(method as *const u8, method_len) }.ok_or(R::CERT_AUTHZ_ERR_NULL_POINTER));
        let path =
            // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
            try_r!(unsafe { bytes(path as *const u8, path_len) }.ok_or(R::CERT_AUTHZ_ERR_NULL_POINTER));
        let peer = match peer {
            cert_authz_peer::CERT_AUTHZ_PEER_NONE => Peer::None,
            cert_authz_peer::CERT_AUTHZ_PEER_UNVERIFIED => Peer::Unverified,
            cert_authz_peer::CERT_AUTHZ_PEER_UNPARSABLE => Peer::Unparsable,
            cert_authz_peer::CERT_AUTHZ_PEER_VERIFIED => {
                // SAFETY: a handle this library made (or NULL, which is checked), as the header requires.
                match try_r!(unsafe { presented_ref(identity) }).identity() {
                    Some(identity) => Peer::Verified(identity),
                    None => Peer::Unparsable,
                }
            }
            _ => return R::CERT_AUTHZ_ERR_INVALID_ARGUMENT,
        };
        let user = if user_attr_len == 0 {
            None
        } else {
            // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
            let name = try_r!(unsafe { text(user_attr, user_attr_len) });
            Some(try_r!(Attr::parse(name).ok_or(R::CERT_AUTHZ_ERR_INVALID_ARGUMENT)))
        };
        // A method or path that is not UTF-8 cannot match any rule: the
        // core refuses it with its own reason rather than fail the call.
        let decision = policy.decide_bytes(peer, method, path, user);
        let (file, line) = decision.origin.unwrap_or(("", 0));
        let user_value = match (decision.user, user, peer) {
            (Some(index), Some(attr), Peer::Verified(identity)) => {
                identity.values(attr).get(index).map(|v| &**v)
            }
            _ => None,
        };
        // SAFETY: the output pointer was checked for NULL; the header makes it writable.
        unsafe {
            *decision_out = cert_authz_decision {
                allowed: decision.allowed as i32,
                reason: cert_authz_reason(decision.reason as u32),
                rule_file: if file.is_empty() { std::ptr::null() } else { file.as_ptr() as *const c_char },
                rule_file_len: file.len(),
                rule_line: line,
                user: user_value.map_or(std::ptr::null(), |v| v.as_ptr() as *const c_char),
                user_len: user_value.map_or(0, str::len),
            };
        }
        R::CERT_AUTHZ_OK
    })
}

#[no_mangle]
pub extern "C" fn cert_authz_decision_line(
    decision: *const cert_authz_decision,
    kind: cert_authz_line_kind,
    identity: *const cert_authz_identity,
    peer: cert_authz_peer,
    method: *const c_char,
    method_len: usize,
    path: *const c_char,
    path_len: usize,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> cert_authz_result {
    guard(|| {
        // SAFETY: NULL is checked; otherwise the header makes it a readable decision.
        let Some(d) = (unsafe { decision.as_ref() }) else {
            return R::CERT_AUTHZ_ERR_NULL_POINTER;
        };
        let kind = match kind {
            cert_authz_line_kind::CERT_AUTHZ_LINE_DENY => LineKind::Deny,
            cert_authz_line_kind::CERT_AUTHZ_LINE_WOULD_DENY => LineKind::WouldDeny,
            cert_authz_line_kind::CERT_AUTHZ_LINE_NOT_GRANTED => LineKind::NotGranted,
            cert_authz_line_kind::CERT_AUTHZ_LINE_ALLOW => LineKind::Allow,
            _ => return R::CERT_AUTHZ_ERR_INVALID_ARGUMENT,
        };
        let Some(reason) = reason_from_c(d.reason) else {
            return R::CERT_AUTHZ_ERR_INVALID_ARGUMENT;
        };
        // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
        let rule_file = try_r!(unsafe { text(d.rule_file, d.rule_file_len) });
        // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
        let method =
            try_r!(unsafe { bytes(method as *const u8, method_len) }.ok_or(R::CERT_AUTHZ_ERR_NULL_POINTER));
        // SAFETY: the header makes each (pointer, length) pair a readable buffer of that length; NULL is checked.
        let path =
            try_r!(unsafe { bytes(path as *const u8, path_len) }.ok_or(R::CERT_AUTHZ_ERR_NULL_POINTER));
        let presented = if identity.is_null() {
            None
        } else {
            // SAFETY: a handle this library made, as the header requires.
            Some(try_r!(unsafe { presented_ref(identity) }))
        };
        if buf.is_null() || len_out.is_null() {
            return R::CERT_AUTHZ_ERR_NULL_POINTER;
        }
        let decision = Decision {
            allowed: d.allowed == 1,
            reason,
            origin: (!rule_file.is_empty()).then_some((rule_file, d.rule_line)),
            user: None,
        };
        let verified = peer == cert_authz_peer::CERT_AUTHZ_PEER_VERIFIED;
        let line = report::line(kind, &decision, presented, verified, method, path);
        if line.len() >= buf_len {
            return R::CERT_AUTHZ_ERR_BUFFER_TOO_SMALL;
        }
        // SAFETY: buf was checked for NULL and holds buf_len bytes (the header's rule); n < buf_len.
        unsafe {
            std::ptr::copy_nonoverlapping(line.as_ptr(), buf as *mut u8, line.len());
            *buf.add(line.len()) = 0;
            *len_out = line.len();
        }
        R::CERT_AUTHZ_OK
    })
}

/// Every export has exactly the signature the header declares: bindgen's
/// declaration and the export must fit one function-pointer type, so a
/// parameter changed in one place and not the other does not compile.
/// (`_` stands for each parameter: the types come from the header.)
macro_rules! same_signature_as_header {
    ($($name:ident($($arg:tt)*)),* $(,)?) => {
        $(
            const _: () = {
                let _ = [sys::$name as unsafe extern "C" fn($($arg),*) -> _, $name];
            };
        )*
    };
}

same_signature_as_header! {
    cert_authz_version(),
    cert_authz_result_name(_),
    cert_authz_reason_text(_),
    cert_authz_set_log_callback(_ _ _),
    cert_authz_policy_builder_new(_),
    cert_authz_policy_builder_add_file(_ _ _ _ _),
    cert_authz_policy_builder_add_statement(_ _ _ _ _ _ _ _),
    cert_authz_policy_builder_build(_ _ _ _),
    cert_authz_policy_builder_free(_),
    cert_authz_policy_rule_count(_ _),
    cert_authz_policy_free(_),
    cert_authz_identity_from_der(_ _ _),
    cert_authz_identity_from_der_chain(_ _ _ _ _ _),
    cert_authz_identity_from_pem(_ _ _),
    cert_authz_identity_refusal(_ _ _),
    cert_authz_identity_clone(_ _),
    cert_authz_identity_is_certificate(_ _ _ _),
    cert_authz_identity_free(_),
    cert_authz_identity_subject(_ _ _),
    cert_authz_identity_attr(_ _ _ _ _ _),
    cert_authz_attr_check(_ _),
    cert_authz_identity_item(_ _ _ _),
    cert_authz_identity_days_left(_ _ _),
    cert_authz_policy_next_group(_ _ _ _ _),
    cert_authz_attr_export_name(_ _ _ _ _),
    cert_authz_identity_attr_by_variable(_ _ _ _ _),
    cert_authz_decide(_ _ _ _ _ _ _ _ _ _),
    cert_authz_decision_line(_ _ _ _ _ _ _ _ _ _ _),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_counts_are_the_codes_and_reasons_named() {
        for code in 0..sys::CERT_AUTHZ_RESULT_COUNT + 1 {
            let known = result_name(cert_authz_result(code)) != "CERT_AUTHZ_ERR_UNKNOWN\0";
            assert_eq!(known, code < sys::CERT_AUTHZ_RESULT_COUNT, "result {code}");
        }
        for code in 0..sys::CERT_AUTHZ_REASON_COUNT + 1 {
            let known = reason_from_c(cert_authz_reason(code)).is_some();
            assert_eq!(known, code < sys::CERT_AUTHZ_REASON_COUNT, "reason {code}");
        }
    }

    #[test]
    fn the_header_tags_are_the_lines_tags() {
        for (tag, kind) in [
            (sys::CERT_AUTHZ_TAG_DENY, LineKind::Deny),
            (sys::CERT_AUTHZ_TAG_ALLOW, LineKind::Allow),
            (sys::CERT_AUTHZ_TAG_WOULD_DENY, LineKind::WouldDeny),
            (sys::CERT_AUTHZ_TAG_NOT_GRANTED, LineKind::NotGranted),
        ] {
            assert_eq!(&tag[..tag.len() - 1], kind.tag().as_bytes());
        }
    }

    #[test]
    fn every_line_fits_the_headers_buffer() {
        let presented = Presented::from_der(b"junk");
        let long = "x".repeat(10_000);
        let decision =
            Decision { allowed: false, reason: Reason::BadCertificate, origin: Some((&long, 7)), user: None };
        let line = report::line(
            LineKind::NotGranted,
            &decision,
            Some(&presented),
            false,
            long.as_bytes(),
            long.as_bytes(),
        );
        assert!(line.len() < sys::CERT_AUTHZ_LINE_MAX as usize, "{}", line.len());
    }

    #[test]
    fn a_panic_while_adding_a_source_means_no_policy() {
        let mut builder: *mut cert_authz_policy_builder = std::ptr::null_mut();
        assert_eq!(cert_authz_policy_builder_new(&mut builder), R::CERT_AUTHZ_OK);
        let statement = "allow * /** any";
        let origin = "test.conf";
        let add = |b| {
            cert_authz_policy_builder_add_statement(
                b,
                statement.as_ptr() as *const c_char,
                statement.len(),
                origin.as_ptr() as *const c_char,
                origin.len(),
                1,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(add(builder), R::CERT_AUTHZ_OK);
        let result = guard_add(builder, "half-read.policy", || panic!("contained on purpose"));
        assert_eq!(result, R::CERT_AUTHZ_ERR_PANIC);
        assert_eq!(add(builder), R::CERT_AUTHZ_OK);

        let mut errors = [0 as c_char; 200];
        let mut policy: *mut cert_authz_policy = std::ptr::null_mut();
        let built = cert_authz_policy_builder_build(builder, errors.as_mut_ptr(), errors.len(), &mut policy);
        assert_eq!(built, R::CERT_AUTHZ_ERR_POLICY);
        assert!(policy.is_null(), "a policy was written");
        // SAFETY: build() NUL-terminates the buffer it was given.
        let text = unsafe { std::ffi::CStr::from_ptr(errors.as_ptr()) }.to_string_lossy().into_owned();
        assert!(text.starts_with("half-read.policy: internal error"), "{text}");
    }

    #[test]
    fn error_text_is_cut_on_a_character_boundary() {
        let mut buf = [1 as c_char; 4];
        write_error(buf.as_mut_ptr(), buf.len(), "ab\u{e9}c");
        // SAFETY: build() NUL-terminates the buffer it was given.
        let text = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        assert_eq!(text.to_bytes(), b"ab");
    }
}
