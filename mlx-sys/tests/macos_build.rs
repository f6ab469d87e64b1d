//! The macOS decisions of the build script, run on any host over synthetic CMake build trees,
//! command outputs and environments: what is linked, what CMake is told, where the metallib goes,
//! what the user is told when the Apple toolchain lacks something, and the native build type.

#[path = "../build/config.rs"]
#[allow(dead_code)]
mod config;
#[path = "../build/error.rs"]
#[allow(dead_code)]
mod error;
#[path = "../build/macos.rs"]
#[allow(dead_code)]
mod macos;
#[path = "../build/pins.rs"]
#[allow(dead_code)]
mod pins;
#[path = "../build/process.rs"]
#[allow(dead_code)]
mod process;

use std::fs;
use std::path::{Path, PathBuf};

use macos::{CmakeTarget, MetallibKey};

fn scratch(name: &str) -> PathBuf {
    let root =
        std::env::temp_dir().join(format!("mlx-sys-macos-test-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    root
}

fn touch(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, b"!<arch>\n").unwrap();
}

/// A CMake build tree laid out as mlx-c 0.7.0 + MLX 0.32.2 leave it (Makefiles generator).
fn build_tree(name: &str, gguf: bool, jaccl: bool) -> PathBuf {
    let root = scratch(name);
    touch(&root.join("libmlxc.a"));
    touch(&root.join("_deps/mlx-build/libmlx.a"));
    if gguf {
        touch(&root.join("_deps/mlx-build/mlx/io/libgguflib.a"));
    }
    if jaccl {
        // MLX adds jaccl with `${CMAKE_BINARY_DIR}/jaccl`: the top of mlx-c's build tree.
        touch(&root.join("jaccl/libjaccl.a"));
    }
    root
}

fn libs(lines: &[String]) -> Vec<&str> {
    lines.iter().filter_map(|l| l.strip_prefix("cargo:rustc-link-lib=")).collect()
}

#[test]
fn links_gguflib_and_jaccl_when_mlx_built_them() {
    let root = build_tree("all", true, true);
    let lines = macos::source_build_link_lines(&root, "Release", None).unwrap();
    assert_eq!(
        libs(&lines),
        [
            "static=mlx",
            "static=gguflib",
            "static=jaccl",
            "framework=Metal",
            "framework=Foundation",
            "framework=QuartzCore",
            "framework=Accelerate",
            "dylib=c++"
        ]
    );
    let io =
        format!("cargo:rustc-link-search=native={}", root.join("_deps/mlx-build/mlx/io").display());
    let jaccl = format!("cargo:rustc-link-search=native={}", root.join("jaccl").display());
    assert!(lines.contains(&io), "{lines:?}");
    assert!(lines.contains(&jaccl), "{lines:?}");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn links_neither_when_mlx_built_neither() {
    // SDK older than 26.2: no jaccl; MLX_BUILD_GGUF=OFF: no gguflib.
    let root = build_tree("none", false, false);
    let lines = macos::source_build_link_lines(&root, "Release", None).unwrap();
    let libs = libs(&lines);
    assert_eq!(libs[0], "static=mlx");
    assert!(!libs.iter().any(|l| l.contains("gguflib") || l.contains("jaccl")), "{libs:?}");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn finds_archives_of_multi_config_generators() {
    let root = scratch("xcode-generator");
    touch(&root.join("_deps/mlx-build/Release/libmlx.a"));
    touch(&root.join("_deps/mlx-build/mlx/io/Release/libgguflib.a"));
    let lines = macos::source_build_link_lines(&root, "Release", None).unwrap();
    let search = format!(
        "cargo:rustc-link-search=native={}",
        root.join("_deps/mlx-build/mlx/io/Release").display()
    );
    assert!(lines.contains(&search), "{lines:?}");
    assert!(libs(&lines).contains(&"static=gguflib"));
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_tree_without_libmlx_is_an_error() {
    let root = scratch("no-mlx");
    let err = macos::source_build_link_lines(&root, "Release", None).unwrap_err().to_string();
    assert!(err.contains("libmlx.a") && err.contains("_deps/mlx-build"), "{err}");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn links_the_compiler_runtime_only_where_it_is() {
    let root = scratch("clang-rt");
    let out = format!("{}\n", root.join("lib/clang/17").display());
    let dir = macos::clang_runtime_dir(&out).unwrap();
    assert_eq!(dir, root.join("lib/clang/17/lib/darwin"));
    assert!(macos::clang_runtime_link_lines(Some(&dir)).is_empty(), "no archive there yet");
    touch(&dir.join("libclang_rt.osx.a"));
    assert_eq!(
        macos::clang_runtime_link_lines(Some(&dir)),
        [
            format!("cargo:rustc-link-search=native={}", dir.display()),
            "cargo:rustc-link-lib=static:-bundle=clang_rt.osx".to_owned()
        ]
    );
    let tree = build_tree("with-rt", true, false);
    let lines = macos::source_build_link_lines(&tree, "Release", Some(&dir)).unwrap();
    assert_eq!(libs(&lines).last(), Some(&"static:-bundle=clang_rt.osx"));
    assert_eq!(macos::clang_runtime_dir(""), None);
    fs::remove_dir_all(root).unwrap();
    fs::remove_dir_all(tree).unwrap();
}

fn target<'a>(
    target: &'a str,
    host: &'a str,
    arch: &'a str,
    deployment: &'a str,
) -> CmakeTarget<'a> {
    CmakeTarget {
        target,
        host,
        target_arch: arch,
        deployment_target: deployment,
        cc: "/Applications/Xcode.app/Contents/Developer/Toolchains/XcodeDefault.xctoolchain/usr/bin/clang",
        cxx: "/Applications/Xcode.app/Contents/Developer/Toolchains/XcodeDefault.xctoolchain/usr/bin/clang++",
    }
}

#[test]
fn passes_deployment_target_architecture_and_compilers() {
    let native = "aarch64-apple-darwin";
    let args = macos::cmake_args(&target(native, native, "aarch64", "15.0")).unwrap();
    assert_eq!(
        args,
        [
            "-DCMAKE_OSX_DEPLOYMENT_TARGET=15.0",
            "-DCMAKE_OSX_ARCHITECTURES=arm64",
            "-DCMAKE_APPLE_SILICON_PROCESSOR=arm64",
            "-DCMAKE_C_COMPILER=/Applications/Xcode.app/Contents/Developer/Toolchains/XcodeDefault.xctoolchain/usr/bin/clang",
            "-DCMAKE_CXX_COMPILER=/Applications/Xcode.app/Contents/Developer/Toolchains/XcodeDefault.xctoolchain/usr/bin/clang++",
        ]
    );
    // An x86-64 cargo (Rosetta) building for Apple Silicon: CMake is told the system too.
    let cross =
        macos::cmake_args(&target(native, "x86_64-apple-darwin", "aarch64", "26.2")).unwrap();
    assert!(cross.contains(&"-DCMAKE_OSX_DEPLOYMENT_TARGET=26.2".to_owned()), "{cross:?}");
    assert!(cross.contains(&"-DCMAKE_SYSTEM_NAME=Darwin".to_owned()), "{cross:?}");
    assert!(cross.contains(&"-DCMAKE_SYSTEM_PROCESSOR=arm64".to_owned()), "{cross:?}");
    // MLX refuses x86-64 macOS: the build says so before configuring.
    let intel = "x86_64-apple-darwin";
    let err = macos::cmake_args(&target(intel, intel, "x86_64", "15.0")).unwrap_err().to_string();
    assert!(err.contains("Apple Silicon") && err.contains("x86_64"), "{err}");
}

#[test]
fn deployment_target_defaults_validates_and_warns() {
    assert_eq!(macos::deployment_target(None, "15.0").unwrap(), "15.0");
    assert_eq!(macos::deployment_target(Some("26.2"), "15.0").unwrap(), "26.2");
    assert_eq!(macos::deployment_target(Some(" 14 "), "15.0").unwrap(), "14");
    let old = macos::deployment_target(Some("13.5"), "15.0").unwrap_err().to_string();
    assert!(old.contains("13.5") && old.contains("14.0"), "{old}");
    let bad = macos::deployment_target(Some("sonoma"), "15.0").unwrap_err().to_string();
    assert!(bad.contains("sonoma"), "{bad}");
    assert_eq!(macos::deployment_target_warning(true, "15.0"), None);
    let warning = macos::deployment_target_warning(false, "15.0").unwrap();
    assert!(warning.contains("MACOSX_DEPLOYMENT_TARGET=15.0"), "{warning}");
    assert_eq!(pins::MACOS_DEPLOYMENT_TARGET, "15.0");
}

#[test]
fn compiler_overrides_follow_the_cc_crate_order() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    };
    let t = "aarch64-apple-darwin";
    assert_eq!(macos::compiler_override(env(&[]), "CXX", t, t), None);
    assert_eq!(
        macos::compiler_override(
            env(&[("CXX", "/opt/homebrew/opt/llvm/bin/clang++")]),
            "CXX",
            t,
            t
        ),
        Some("/opt/homebrew/opt/llvm/bin/clang++".to_owned())
    );
    let both = env(&[("CXX", "g++"), ("CXX_aarch64_apple_darwin", "clang++-17")]);
    assert_eq!(macos::compiler_override(both, "CXX", t, t), Some("clang++-17".to_owned()));
    let dashed = env(&[("CC_aarch64-apple-darwin", "a"), ("CC_aarch64_apple_darwin", "b")]);
    assert_eq!(macos::compiler_override(dashed, "CC", t, t), Some("a".to_owned()));
    let target_cxx = env(&[("TARGET_CXX", "cross++")]);
    assert_eq!(macos::compiler_override(target_cxx, "CXX", t, t), None, "native build");
    let target_cxx = env(&[("TARGET_CXX", "cross++")]);
    assert_eq!(
        macos::compiler_override(target_cxx, "CXX", t, "x86_64-apple-darwin"),
        Some("cross++".to_owned())
    );
}

#[test]
fn metallib_lives_in_a_stable_versioned_place() {
    let cache = Path::new("/Users/me/.cache/mlx-sys");
    let key = MetallibKey {
        mlx_version: "0.32.2",
        deployment_target: "15.0",
        sdk_version: "26.2",
        build_type: "Release",
        custom_source: None,
    };
    let dir = macos::metallib_dir(cache, &key);
    assert_eq!(dir, cache.join("metallib-mlx-0.32.2-macos15.0-sdk26.2-release"));
    let file = macos::metallib_file(&dir);
    assert_eq!(file, dir.join("mlx.metallib"));
    assert_eq!(
        macos::metallib_metadata(&file),
        "cargo:metallib=/Users/me/.cache/mlx-sys/metallib-mlx-0.32.2-macos15.0-sdk26.2-release/mlx.metallib"
    );
    // Every input that changes the kernels gives another directory.
    let others = [
        MetallibKey { deployment_target: "26.2", ..key.clone() },
        MetallibKey { sdk_version: "15.5", ..key.clone() },
        MetallibKey { build_type: "Debug", ..key.clone() },
        MetallibKey { custom_source: Some(Path::new("/src/mlx")), ..key.clone() },
        MetallibKey { custom_source: Some(Path::new("/src/mlx-fork")), ..key.clone() },
    ];
    let mut dirs: Vec<PathBuf> = others.iter().map(|k| macos::metallib_dir(cache, k)).collect();
    dirs.push(dir);
    let count = dirs.len();
    dirs.sort();
    dirs.dedup();
    assert_eq!(dirs.len(), count, "{dirs:?}");
    assert!(dirs.iter().all(|d| d.parent() == Some(cache)), "outside OUT_DIR, inside the cache");
    // The same inputs always give the same place (it is baked into the library).
    assert_eq!(macos::metallib_dir(cache, &others[3]), macos::metallib_dir(cache, &others[3]));
}

#[test]
fn metal_toolchain_messages_say_what_to_install() {
    assert_eq!(macos::metal_toolchain_problem(true, "", None), None);

    let xcode26 = "error: error: cannot execute tool 'metal' due to missing Metal Toolchain; use: \
                   xcodebuild -downloadComponent MetalToolchain";
    let xcode = Some("/Applications/Xcode.app/Contents/Developer");
    let msg = macos::metal_toolchain_problem(false, xcode26, xcode).unwrap();
    assert!(msg.contains("xcodebuild -downloadComponent MetalToolchain"), "{msg}");
    assert!(!msg.contains("xcode-select --switch"), "Xcode is already selected: {msg}");
    assert!(msg.contains("MLX_BACKEND=cpu"), "{msg}");

    let clt = "xcrun: error: unable to find utility \"metal\", not a developer tool or in PATH";
    let msg =
        macos::metal_toolchain_problem(false, clt, Some("/Library/Developer/CommandLineTools"))
            .unwrap();
    assert!(msg.contains("command line tools have no Metal compiler"), "{msg}");
    assert!(msg.contains("xcode-select --switch /Applications/Xcode.app"), "{msg}");
    assert!(msg.contains("/Library/Developer/CommandLineTools"), "{msg}");
    assert!(!msg.contains("xcode-select --install"), "the tools would not help: {msg}");

    let msg =
        macos::metal_toolchain_problem(false, "cannot start xcrun: No such file", None).unwrap();
    assert!(msg.contains("install Xcode"), "{msg}");
}

#[test]
fn sdk_failures_stop_the_build_with_a_hint() {
    let err = macos::sdk_error(
        "xcrun: error: SDK \"macosx\" cannot be located",
        Some("/Library/Developer/CommandLineTools"),
    )
    .to_string();
    assert!(err.contains("cannot be located"), "{err}");
    assert!(err.contains("DEVELOPER_DIR") && err.contains("SDKROOT"), "{err}");
    assert!(
        err.contains("active developer directory: /Library/Developer/CommandLineTools"),
        "{err}"
    );
    assert!(macos::metal_compat_for_sdk("15.5").unwrap());
    assert!(!macos::metal_compat_for_sdk("26.0").unwrap());
    assert!(!macos::metal_compat_for_sdk("26.2").unwrap());
    let err = macos::metal_compat_for_sdk("").unwrap_err().to_string();
    assert!(err.contains("MLX_METAL_COMPAT"), "{err}");
}

#[test]
fn offline_builds_name_every_source_they_lack() {
    let root = scratch("offline");
    assert_eq!(
        macos::missing_offline_sources(&root, &[], true),
        ["JSON", "FMT", "GGUFLIB", "METAL_CPP"]
    );
    assert_eq!(macos::missing_offline_sources(&root, &[], false), ["JSON", "FMT", "GGUFLIB"]);
    fs::create_dir_all(root.join("_deps/json-src")).unwrap();
    fs::create_dir_all(root.join("_deps/metal_cpp-src")).unwrap();
    assert_eq!(macos::missing_offline_sources(&root, &["FMT"], true), ["GGUFLIB"]);
    let err = macos::offline_sources_error(&["FMT", "GGUFLIB", "METAL_CPP"], "0.32.2").to_string();
    for var in [
        "FETCHCONTENT_SOURCE_DIR_FMT",
        "FETCHCONTENT_SOURCE_DIR_GGUFLIB",
        "FETCHCONTENT_SOURCE_DIR_METAL_CPP",
    ] {
        assert!(err.contains(var), "{var} in {err}");
    }
    assert!(!err.contains("FETCHCONTENT_SOURCE_DIR_JSON"), "{err}");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn reads_the_mlx_version_header() {
    let header = "#pragma once\n\n#define MLX_VERSION_MAJOR 0\n#define MLX_VERSION_MINOR 32\n\
                  #define MLX_VERSION_PATCH 2\n#define MLX_VERSION_NUMERIC \\\n  (100000 * 0)\n";
    assert_eq!(macos::mlx_version_from_header(header).as_deref(), Some("0.32.2"));
    assert_eq!(macos::mlx_version_from_header("#define MLX_VERSION_MAJOR 0\n"), None);
    assert_eq!(macos::parse_version("26.2.1"), Some((26, 2)));
    assert_eq!(macos::parse_version("15"), Some((15, 0)));
    assert_eq!(macos::parse_version("x"), None);
}

#[test]
fn native_code_is_optimised_in_every_profile_unless_asked() {
    use config::cmake_build_type;
    for (opt, debug) in [("0", true), ("1", true), ("3", false), ("s", false)] {
        assert_eq!(cmake_build_type(None, opt, debug).unwrap(), "Release", "opt-level {opt}");
    }
    assert_eq!(cmake_build_type(Some("cargo"), "0", true).unwrap(), "Debug");
    assert_eq!(cmake_build_type(Some("cargo"), "3", true).unwrap(), "RelWithDebInfo");
    assert_eq!(cmake_build_type(Some("cargo"), "3", false).unwrap(), "Release");
    assert_eq!(cmake_build_type(Some("cargo"), "z", false).unwrap(), "MinSizeRel");
    assert_eq!(cmake_build_type(Some("debug"), "3", false).unwrap(), "Debug");
    assert_eq!(cmake_build_type(Some("RelWithDebInfo"), "0", true).unwrap(), "RelWithDebInfo");
    let err = cmake_build_type(Some("fast"), "0", true).unwrap_err().to_string();
    assert!(err.contains("MLX_SYS_BUILD_TYPE=fast"), "{err}");
}
