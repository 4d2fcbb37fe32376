//! The `gradcam` command end to end, on a folder built here: two photos, a truncated JPEG and a
//! text file.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::Device;
use gradcam::image::{guided_to_rgb, load_image};
use gradcam::models::{SqueezeNet, load_weights};
use gradcam::{ExplainerConfig, SessConfig, Target, Targets, guided_grad_cam};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn gradcam() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gradcam"))
}

/// A fresh folder under the target directory (no temp-dir crate needed).
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every file under `dir` with its bytes, sorted.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

/// The largest absolute difference.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
}

fn read_npy(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec::<f32>().unwrap())
}

#[test]
fn a_folder_gives_overlays_at_photo_resolution_raw_maps_and_a_summary() {
    let root = scratch("folder");
    let photos = root.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(repo("assets/chelsea.png"), photos.join("a_chelsea.png")).unwrap();
    std::fs::copy(repo("assets/coffee.png"), photos.join("b_coffee.png")).unwrap();
    let jpeg = std::fs::read(repo("assets/quokka.jpg")).unwrap();
    std::fs::write(photos.join("c_truncated.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    std::fs::write(photos.join("d_notes.txt"), "not a photo\n").unwrap();
    let before = snapshot(&photos);
    let out = root.join("out");

    let run = gradcam()
        .arg(&photos)
        .args(["--top", "2", "--batch", "4", "--raw", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    // Two files fail: the exit code says so, and each is named on stderr.
    assert_eq!(run.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("c_truncated.jpg") && stderr.contains("d_notes.txt"),
        "{stderr}"
    );
    assert!(
        stdout.contains("explained 2 of 4 photos (2 failed)"),
        "{stdout}"
    );
    assert_eq!(snapshot(&photos), before, "the input folder was written");

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let entries = summary["photos"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    assert!(entries[2]["error"].is_string() && entries[3]["error"].is_string());
    assert_eq!(summary["layer"], "fire9");

    // Chelsea is a cat: its top class is one of ImageNet's domestic cats (281-285).
    let chelsea = &entries[0];
    let maps = chelsea["maps"].as_array().unwrap();
    assert_eq!(maps.len(), 2);
    let class = |m: &serde_json::Value| m["class"].as_u64().unwrap() as usize;
    assert!((281..=285).contains(&class(&maps[0])), "{chelsea}");
    assert!(maps[0]["score"].as_f64().unwrap() >= maps[1]["score"].as_f64().unwrap());

    // The overlay keeps the photo's own size (not the model's 227 x 227 square).
    let photo = load_image(repo("assets/chelsea.png")).unwrap();
    let overlay = load_image(out.join(maps[0]["overlay"].as_str().unwrap())).unwrap();
    assert_eq!(overlay.dimensions(), photo.dimensions());
    assert_ne!(overlay.dimensions().0, overlay.dimensions().1);
    assert_eq!(
        chelsea["size"],
        serde_json::json!([photo.width(), photo.height()])
    );

    // The .npy maps are the library's maps for the same batch and classes. Bound: the same
    // float32 computation on the same inputs in another process, so any difference is a thread's
    // summation order: a few float32 ulps of a [0, 1] value, far under 1e-5; the other class's
    // map (a deliberately wrong answer) is much further off.
    let device = Device::flex();
    let model = load_weights(
        SqueezeNet::new(&device),
        repo("assets/squeezenet1_1.safetensors"),
    )
    .unwrap();
    let coffee = load_image(repo("assets/coffee.png")).unwrap();
    let input = SqueezeNet::preprocess()
        .to_tensor(&[photo, coffee], &device)
        .unwrap();
    let rows: Vec<Vec<Target>> = entries[..2]
        .iter()
        .map(|e| {
            e["maps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| class(m).into())
                .collect()
        })
        .collect();
    let explanation = ExplainerConfig::new()
        .init(&model)
        .unwrap()
        .explain(input, &Targets::rows_per_image(rows))
        .unwrap();
    for (i, entry) in entries[..2].iter().enumerate() {
        for (t, map) in entry["maps"].as_array().unwrap().iter().enumerate() {
            let (shape, values) = read_npy(&out.join(map["raw"].as_str().unwrap()));
            assert_eq!(shape, [227, 227]);
            let ours = explanation.heatmap_values(i, t).unwrap();
            assert!(max_diff(&values, &ours) <= 1e-5, "photo {i} target {t}");
            let wrong = explanation.heatmap_values(i, 1 - t).unwrap();
            assert!(
                max_diff(&values, &wrong) > 1e-2,
                "photo {i}: both classes' maps agree"
            );
        }
    }
}

#[test]
fn guided_writes_the_librarys_guided_grad_cam_as_pytorch_grad_cam_pictures_it() {
    let root = scratch("guided");
    let out = root.join("out");
    let run = gradcam()
        .arg(repo("assets/chelsea.png"))
        .args(["--class", "285", "--guided", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let name = summary["photos"][0]["maps"][0]["guided"].as_str().unwrap();
    assert_eq!(name, "chelsea.285.guided.png");
    let written = load_image(out.join(name)).unwrap();
    assert_eq!(written.dimensions(), (227, 227));

    // The library's Guided Grad-CAM of the same photo and class, every SqueezeNet ReLU guided.
    // Bound: the same float32 computation in another process differs by a thread's summation
    // order, a few ulps, which moves a byte by at most one where it lies at a rounding boundary.
    let device = Device::flex();
    let model = load_weights(
        SqueezeNet::new(&device),
        repo("assets/squeezenet1_1.safetensors"),
    )
    .unwrap();
    let photo = load_image(repo("assets/chelsea.png")).unwrap();
    let input = SqueezeNet::preprocess()
        .to_tensor(&[photo], &device)
        .unwrap();
    let explainer = ExplainerConfig::new().init(&model).unwrap();
    let picture = |class: usize| {
        let targets = Targets::class(class);
        let heatmap = explainer.explain(input.clone(), &targets).unwrap().heatmap;
        let guided = explainer.guided_backprop(input.clone(), &targets).unwrap();
        // conv1, three in each of the 8 Fire modules, conv10.
        assert_eq!(guided.guided_relus, 26);
        let values = guided_grad_cam(heatmap, guided.gradients)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap();
        guided_to_rgb(&values, [227, 227]).unwrap()
    };
    let bytes_apart = |other: &image::RgbImage| {
        written
            .as_raw()
            .iter()
            .zip(other.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap()
    };
    assert!(bytes_apart(&picture(285)) <= 1);
    // Another class's picture (a deliberately wrong answer) is far off.
    assert!(bytes_apart(&picture(1)) > 16);
}

/// `gradcam chelsea.png --class 285 --raw` with `flags`: the summary, and the map it wrote.
fn written_with(name: &str, flags: &[&str]) -> (serde_json::Value, Vec<f32>) {
    let out = scratch(name).join("out");
    let run = gradcam()
        .arg(repo("assets/chelsea.png"))
        .args(["--class", "285", "--raw"])
        .args(flags)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    (summary, read_npy(&out.join("chelsea.285.npy")).1)
}

/// The library's map of class 285 on chelsea.png by SqueezeNet under `config`.
fn library_map(config: ExplainerConfig) -> Vec<f32> {
    let device = Device::flex();
    let model = load_weights(
        SqueezeNet::new(&device),
        repo("assets/squeezenet1_1.safetensors"),
    )
    .unwrap();
    let photo = load_image(repo("assets/chelsea.png")).unwrap();
    let input = SqueezeNet::preprocess()
        .to_tensor(&[photo], &device)
        .unwrap();
    config
        .init(&model)
        .unwrap()
        .explain(input, &Targets::class(285))
        .unwrap()
        .heatmap_values(0, 0)
        .unwrap()
}

// Bound of the next two: the same float32 computation in another process (a thread's summation
// order), far under 1e-5 of a [0, 1] map; the plain map (a deliberately wrong answer) is far off.

#[test]
fn smoothing_flags_give_the_librarys_smoothed_maps() {
    let (summary, written) = written_with("smoothing", &["--eigen-smooth", "--aug-smooth"]);
    assert_eq!(summary["eigen_smooth"], true);
    assert_eq!(summary["aug_smooth"], true);
    let smoothed = ExplainerConfig::new()
        .with_eigen_smooth(true)
        .with_aug_smooth(true);
    assert!(max_diff(&written, &library_map(smoothed)) <= 1e-5);
    assert!(max_diff(&written, &library_map(ExplainerConfig::new())) > 1e-2);
}

#[test]
fn sess_gives_the_librarys_sess_map() {
    let (summary, written) = written_with("sess", &["--sess"]);
    assert_eq!(summary["sess"], true);
    let sess = ExplainerConfig::new().with_sess(SessConfig::new());
    assert!(max_diff(&written, &library_map(sess)) <= 1e-5);
    assert!(max_diff(&written, &library_map(ExplainerConfig::new())) > 1e-2);
}

#[test]
fn it_never_writes_into_an_input_folder_and_reports_bad_arguments() {
    let root = scratch("refuse");
    let photos = root.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(repo("assets/chelsea.png"), photos.join("chelsea.png")).unwrap();
    let before = snapshot(&photos);
    for out in [photos.clone(), photos.join("maps")] {
        let run = gradcam()
            .arg(&photos)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&run.stderr).contains("refusing to write"));
    }
    // Beside a photo named on its own is its folder too.
    let run = gradcam()
        .arg(photos.join("chelsea.png"))
        .arg("--out")
        .arg(&photos)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert_eq!(snapshot(&photos), before);

    // Bad weights: a clear message and exit code 2, nothing explained.
    let bad = root.join("bad.safetensors");
    std::fs::write(&bad, b"not safetensors").unwrap();
    let run = gradcam()
        .arg(&photos)
        .arg("--weights")
        .arg(&bad)
        .arg("--out")
        .arg(root.join("out"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("bad.safetensors"));
    // A ResNet without weights says how to get them; an unknown method lists the known ones.
    let run = gradcam()
        .arg(&photos)
        .args(["--model", "resnet50"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&run.stderr).contains("--weights"));
    let run = gradcam()
        .arg(&photos)
        .args(["--method", "grad-kam"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
}

#[test]
fn a_centre_crop_overlay_paints_only_the_part_the_model_saw() {
    let root = scratch("crop");
    let out = root.join("out");
    let run = gradcam()
        .arg(repo("assets/chelsea.png"))
        .args(["--resize", "center-crop", "--class", "285", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let photo = load_image(repo("assets/chelsea.png")).unwrap();
    let shown = load_image(out.join("chelsea.285.png")).unwrap();
    // 451 x 300 -> Resize(259) -> 389 x 259, centre 227 x 227 from (81, 16): in the photo
    // x in [94, 357), y in [19, 282) (gradcam::image::Resize::source_region).
    let (x, y, w, h) = gradcam::image::Resize::ShorterSideThenCenterCrop { shorter: 259 }
        .source_region(photo.dimensions(), [227, 227])
        .unwrap();
    assert_eq!((x, y, w, h), (94, 19, 263, 263));
    let changed = |px: u32, py: u32| photo.get_pixel(px, py) != shown.get_pixel(px, py);
    let outside = (0..300)
        .filter(|&py| changed(10, py) || changed(440, py))
        .count()
        + (0..451)
            .filter(|&px| changed(px, 5) || changed(px, 295))
            .count();
    let inside = (0..300).filter(|&py| changed(225, py)).count();
    assert_eq!(outside, 0, "the overlay painted outside the crop");
    assert!(
        inside > 250,
        "only {inside} of 300 pixels painted inside the crop"
    );
}

/// `gradcam-bench`, the binary scripts/gpu_check.sh runs: one row on flex, with a stream of
/// photos, and the kernel rows; every number it reports is a positive, finite time or rate.
#[test]
fn the_bench_reports_positive_timings_as_json_lines() {
    let dir = scratch("bench");
    let json = dir.join("rows.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_gradcam-bench"))
        .args(["--device", "flex", "--model", "squeezenet", "--batch", "2"])
        .args(["--iters", "1", "--warmup", "0", "--stream", "2"])
        .arg("--photos")
        .arg(repo("assets/chelsea.png"))
        .arg(repo("assets/quokka.jpg"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let text = std::fs::read_to_string(&json).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("\"kind\":\"explain\"") && lines[1].contains("\"from\":\"photos\""));
    for line in lines {
        for field in line
            .split(',')
            .filter(|f| f.contains("_ms\"") || f.contains("_s\""))
        {
            let value: f64 = field
                .rsplit(':')
                .next()
                .unwrap()
                .trim_end_matches('}')
                .parse()
                .unwrap_or_else(|e| panic!("{field}: {e}"));
            assert!(value.is_finite() && value > 0.0, "{field} in {line}");
        }
    }
    let kernels = Command::new(env!("CARGO_BIN_EXE_gradcam-bench"))
        .args([
            "--device",
            "flex",
            "--kernels",
            "--batch",
            "1",
            "--iters",
            "1",
        ])
        .output()
        .unwrap();
    assert!(kernels.status.success());
    let table = String::from_utf8(kernels.stdout).unwrap();
    assert_eq!(
        table.lines().filter(|l| l.starts_with("| [1, ")).count(),
        3,
        "{table}"
    );
}

/// `--dtype f16` runs the network in half precision: the map equals the library's for the model
/// cast to f16 (`gradcam::cast_model`) on the same photo, within a few float32 ulps of a [0, 1]
/// value (the same computation in another process), and differs from the f32 map by more (the
/// f16 network moves it by about 1e-3: the flag took effect).
#[test]
fn dtype_f16_runs_the_network_in_half_precision() {
    let root = scratch("f16");
    let map = |dtype: &str| {
        let out = root.join(dtype);
        let run = gradcam()
            .arg(repo("assets/chelsea.png"))
            .args(["--class", "285", "--raw", "--dtype", dtype, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(run.status.success(), "{run:?}");
        read_npy(&out.join("chelsea.285.npy"))
    };
    let (shape, half) = map("f16");
    assert_eq!(shape, [227, 227]);
    let (_, full) = map("f32");

    let device = Device::flex();
    let model = load_weights(
        SqueezeNet::new(&device),
        repo("assets/squeezenet1_1.safetensors"),
    )
    .unwrap();
    let model = gradcam::cast_model(model, burn::tensor::FloatDType::F16);
    let photo = load_image(repo("assets/chelsea.png")).unwrap();
    let input = SqueezeNet::preprocess()
        .to_tensor(&[photo], &device)
        .unwrap()
        .cast(burn::tensor::FloatDType::F16);
    let library = ExplainerConfig::new()
        .init(&model)
        .unwrap()
        .explain(input, &Targets::class(285))
        .unwrap()
        .heatmap_values(0, 0)
        .unwrap();
    assert!(
        max_diff(&half, &library) <= 1e-5,
        "{}",
        max_diff(&half, &library)
    );
    assert!(max_diff(&half, &full) > 1e-5, "--dtype f16 changed nothing");
}

/// What a careless or hostile user feeds the command, each once a defect: every entry the search
/// finds ends up in `summary.json` (links that loop or lead nowhere, a FIFO, a name that is not
/// UTF-8), the search ends however many links lead back, and `summary.json` stays valid JSON.
#[test]
fn odd_entries_are_reported_in_a_valid_summary_and_loops_end() {
    use std::os::unix::ffi::OsStrExt;
    let root = scratch("odd");
    let photos = root.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(repo("assets/chelsea.png"), photos.join("chelsea.png")).unwrap();
    // Two links to the folder itself: the search once made 2^depth paths (a hang).
    std::os::unix::fs::symlink(".", photos.join("a")).unwrap();
    std::os::unix::fs::symlink(".", photos.join("b")).unwrap();
    std::os::unix::fs::symlink("gone.png", photos.join("dangling.png")).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(photos.join("pipe"))
            .status()
            .unwrap()
            .success()
    );
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9.png");
    std::fs::copy(repo("assets/coffee.png"), photos.join(latin1)).unwrap();
    let out = root.join("out");
    let run = gradcam()
        .arg(&photos)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let entries = summary["photos"].as_array().unwrap();
    let entry = |name: &str| {
        entries
            .iter()
            .find(|e| e["file"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} is not in {entries:?}"))
    };
    for skipped in ["/a", "/b", "dangling.png", "pipe"] {
        assert!(entry(skipped)["error"].is_string(), "{skipped}");
    }
    assert!(entry("chelsea.png")["maps"].as_array().unwrap().len() == 1);
    // The name that is not UTF-8: explained, and kept exactly.
    let cafe = entries
        .iter()
        .find(|e| e["file_bytes"].is_array())
        .expect("an entry with the raw bytes of its name");
    let bytes: Vec<u8> = cafe["file_bytes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(bytes, photos.join(latin1).as_os_str().as_bytes());
    assert!(cafe["error"].is_null(), "{cafe}");
    assert_eq!(entries.len(), 6, "{entries:?}");
}

/// Bad arguments are found before any forward and give exit code 2: a class the model does not
/// have (once every photo was explained and failed, exit 1), weights holding NaN (once one
/// failure per photo), an output path that reaches an input folder through `..` in a folder that
/// does not exist yet.
#[test]
fn bad_arguments_stop_the_run_before_any_photo() {
    let root = scratch("arguments");
    let photos = root.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(repo("assets/chelsea.png"), photos.join("chelsea.png")).unwrap();
    let before = snapshot(&photos);
    let run = gradcam()
        .arg(&photos)
        .args(["--class", "1000", "--out"])
        .arg(root.join("o1"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert!(String::from_utf8_lossy(&run.stderr).contains("--class 1000"));

    // SqueezeNet's weights with one tensor's values replaced by NaN.
    let bytes = std::fs::read(repo("assets/squeezenet1_1.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let nan = f32::NAN.to_le_bytes().repeat(1 << 20);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let data = if name == "conv10.bias" {
                &nan[..view.data().len()]
            } else {
                view.data()
            };
            let view =
                safetensors::tensor::TensorView::new(view.dtype(), view.shape().to_vec(), data)
                    .unwrap();
            (name, view)
        })
        .collect();
    let poisoned = root.join("nan.safetensors");
    safetensors::serialize_to_file(views, None, &poisoned).unwrap();
    let run = gradcam()
        .arg(&photos)
        .arg("--weights")
        .arg(&poisoned)
        .arg("--out")
        .arg(root.join("o2"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert!(String::from_utf8_lossy(&run.stderr).contains("conv10.bias"));

    // `new` does not exist: photos/../x/../photos is not the input folder as text, but it is.
    std::fs::create_dir_all(root.join("x")).unwrap();
    let sneaky = root.join("x/new/../../photos/maps");
    let run = gradcam()
        .arg(&photos)
        .arg("--out")
        .arg(&sneaky)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert!(String::from_utf8_lossy(&run.stderr).contains("refusing to write"));
    assert_eq!(snapshot(&photos), before, "the input folder was written");
}

/// The methods without gradients in `f16` (once a dtype panic), and `--top 10` in two explain
/// calls of eight and two classes: ten maps, ranked as the logits rank them.
#[test]
fn f16_eigen_cam_runs_and_top_k_explains_k_classes_in_order() {
    let root = scratch("f16-top");
    for method in ["eigen-cam", "ablation-cam"] {
        let run = gradcam()
            .arg(repo("assets/chelsea.png"))
            .args(["--dtype", "f16", "--method", method, "--out"])
            .arg(root.join(method))
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(0), "{method}: {run:?}");
    }
    let out = root.join("top");
    let run = gradcam()
        .arg(repo("assets/chelsea.png"))
        .args(["--top", "10", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let maps = summary["photos"][0]["maps"].as_array().unwrap();
    assert_eq!(maps.len(), 10);
    let scores: Vec<f64> = maps.iter().map(|m| m["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let classes: std::collections::HashSet<u64> =
        maps.iter().map(|m| m["class"].as_u64().unwrap()).collect();
    assert_eq!(classes.len(), 10, "ten different classes");
}

/// On `wgpu`, CubeCL's caches go to the user's cache folder: run from inside a Cargo project
/// (where CubeCL would write `target/environment/` of the outermost project), nothing appears in
/// the working folder but `--out`. Needs a Vulkan driver (lavapipe in CI).
#[test]
#[ignore = "needs a GPU driver: cargo test -- --ignored wgpu"]
fn wgpu_writes_nothing_outside_out() {
    let root = scratch("wgpu-cache");
    let project = root.join("project");
    std::fs::create_dir_all(project.join("photos")).unwrap();
    std::fs::write(project.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
    std::fs::copy(
        repo("assets/chelsea.png"),
        project.join("photos/chelsea.png"),
    )
    .unwrap();
    let home = root.join("home");
    let run = gradcam()
        .current_dir(&project)
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .args(["photos", "--device", "wgpu", "--out", "maps"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let mut entries: Vec<String> = std::fs::read_dir(&project)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["Cargo.toml", "maps", "photos"]);
    assert!(
        home.join(".cache/cubecl").exists(),
        "the caches went elsewhere"
    );
}

/// The command's networks are convolutional: LeGrad (a transformer's attention) is not among its
/// methods, and asking for it is a usage error that lists the ones there are, before any photo.
#[test]
fn legrad_is_not_a_method_of_the_command() {
    let out = scratch("legrad");
    let run = gradcam()
        .arg(repo("assets/chelsea.png"))
        .args(["--method", "legrad", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("grad-cam") && stderr.contains("shapley-cam"),
        "{stderr}"
    );
    let run = gradcam()
        .arg(repo("assets/chelsea.png"))
        .args(["--method", "shapley-cam", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
