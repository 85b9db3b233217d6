//! Settings of the platform's web view that must be made before it starts.

/// Opt-out: `SHOUHU_GPU_COMPOSITING=1` keeps WebKitGTK's accelerated
/// compositing.
pub const GPU_COMPOSITING_ENV: &str = "SHOUHU_GPU_COMPOSITING";

/// On Linux, turns off WebKitGTK's accelerated compositing unless the user
/// chose otherwise (either variable already set).
///
/// Why: on the school laptops this app is for (old integrated graphics or
/// none, 4 GB of RAM) compositing runs on Mesa's software GL, and its
/// buffers are most of the page process's memory: with 5,000 children the
/// WebKit page process holds 218 MB of private memory with compositing and
/// 61 MB without (BENCHMARKS.md, "Desktop app"). The app's pages are forms
/// and a virtualised list, which draw well without it.
///
/// Must run before any thread starts (it changes the environment), i.e.
/// first thing in `main`.
pub fn web_view_defaults() {
    #[cfg(target_os = "linux")]
    {
        const WEBKIT: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";
        if std::env::var_os(WEBKIT).is_none() && std::env::var_os(GPU_COMPOSITING_ENV).is_none() {
            std::env::set_var(WEBKIT, "1");
        }
    }
}
