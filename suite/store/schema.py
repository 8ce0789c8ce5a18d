"""Result-row columns, defined once.

Every other module (the worker, the results store, `analysis`) names columns
through these constants. Pure Python: importing it pulls in no TensorFlow.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

# Status values of a row / trial.
STATUS_OK = "ok"
STATUS_DIVERGED = "diverged"
STATUS_FAILED = "failed"
STATUSES = (STATUS_OK, STATUS_DIVERGED, STATUS_FAILED)

# --- identity and trial config -------------------------------------------
SCHEMA_VERSION_COL = "schema_version"
SWEEP = "sweep"
TRIAL_ID = "trial_id"
TRIAL_INDEX = "trial_index"
DATASET = "dataset"
MODEL = "model"
UPSAMPLING = "upsampling"
KERNEL_SIZE = "kernel_size"
LATENT_DIM = "latent_dim"
EPOCHS = "epochs"
EPOCH = "epoch"
SEED = "seed"
BATCH_SIZE = "batch_size"
GLOBAL_BATCH_SIZE = "global_batch_size"
WORKERS = "workers"
LR = "lr"
LR_SCALING = "lr_scaling"
LR_EFFECTIVE = "lr_effective"
MAX_TRAIN_IMAGES = "max_train_images"
CONFIG_JSON = "config_json"

# --- outcome ----------------------------------------------------------------
STATUS = "status"
ERROR = "error"

# --- throughput (training only: warm-up and evaluation excluded) -------------
IMAGES_PER_SEC = "images_per_sec"
IMAGES_PER_SEC_PER_WORKER = "images_per_sec_per_worker"
STEP_TIME_P50_MS = "step_time_p50_ms"
STEP_TIME_P95_MS = "step_time_p95_ms"
EPOCH_TIME_S = "epoch_time_s"
COMPILE_TIME_S = "compile_time_s"
TRAIN_TIME_S = "train_time_s"
STEPS = "steps"
WARMUP_STEPS = "warmup_steps"
EVAL_TIME_S = "eval_time_s"

# --- training loop and precision -------------------------------------------
# The trainer runs K steps per compiled call and reads the host once per call, so
# images_per_sec comes from call times, and step_time_p50_ms / _p95_ms are percentiles of
# per-step averages within a call (each step counts as its call's seconds / K). Warm-up
# is the first calls (one step each) of every process.
STEPS_PER_CALL = "steps_per_call"  # K the row's process trained with (auto: its choice)
STEPS_PER_CALL_SETTING = "steps_per_call_setting"  # the axis value: "auto" or the number
PRECISION = "precision"  # fp32 | mixed_bfloat16 | mixed_float16 (metrics are always fp32)
JIT_COMPILE = "jit_compile"  # the training step XLA-compiled (the trial option)
# The epoch's whole wall time: from the end of the previous epoch's row (or from when this
# process took up the trial: data, model and backbone setup, checkpoint restore) to the
# end of its last call. Minus its calls' time, that is what step-based figures leave out.
EPOCH_WALL_S = "epoch_wall_s"
WALL_TIME_S = "wall_time_s"  # epoch_wall_s summed over every epoch so far (all processes)
# Diverged rows: the steps (1-based, within the row's epoch) of the call whose loss went
# non-finite; the error names the first non-finite step itself.
NONFINITE_STEPS_FROM = "nonfinite_steps_from"
NONFINITE_STEPS_TO = "nonfinite_steps_to"

# --- utilisation -------------------------------------------------------
# FLOPs count matmuls only (Dense, Conv, Conv2DTranspose; 1 multiply-add = 2 FLOPs), as
# PaLM-style MFU does: suite/models/flops.py. achieved = flops_per_image x images_per_sec;
# mfu = achieved / (peak_tflops x workers). The peak is a GPU's datasheet figure where the
# device is known, else a matmul calibration of this machine (suite/machine/peak.py).
FLOPS_PER_IMAGE = "flops_per_image"  # one training step (every network, fwd + bwd)
EVAL_FLOPS_PER_IMAGE = "eval_flops_per_image"  # the evaluation backbones' forward passes
ACHIEVED_TFLOPS = "achieved_tflops"
PEAK_TFLOPS = "peak_tflops"  # one worker's device
PEAK_SOURCE = "peak_source"  # "datasheet:<device> <precision>" or "calibration:<cpu> ..."
PEAK_CALIBRATED_TFLOPS = "peak_calibrated_tflops"  # the calibration, also beside a datasheet
# How the row's peak was obtained: datasheet | calibrated (the cores to itself) |
# calibrated_under_load (a lower bound) | raised_to_achieved (the trial beat the figure).
PEAK_BASIS = "peak_basis"
PEAK_TRUSTED = "peak_trusted"  # False: the peak is a lower bound, so mfu an upper bound
PEAK_CPU_SHARE = "peak_cpu_share"  # share of its cores the calibration got (CPU time/wall)
MFU = "mfu"

# --- network shape and optimiser ----------------------------------------
# The tutorial network is depth 1, width 1.0; with params_* these say what size of model
# a row's quality and throughput belong to.
DEPTH = "depth"  # stride-1 blocks of the generator/decoder
WIDTH = "width"  # multiplier on every channel width, rounded to whole channels
BETA1 = "beta1"  # Adam's first-moment decay

# --- model size ---------------------------------------------------------------
PARAMS_TOTAL = "params_total"
PARAMS_GENERATOR = "params_generator"
PARAMS_DISCRIMINATOR = "params_discriminator"
PARAMS_ENCODER = "params_encoder"
PARAMS_DECODER = "params_decoder"

# --- losses (GAN family, VAE family) ------------------------------------------
LOSS_G = "loss_g"
LOSS_D = "loss_d"
ELBO = "elbo"
LOSS_RECON = "loss_recon"
LOSS_KL = "loss_kl"

# --- data protocol --------------------------------------------------------------
TRAIN_SPLIT = "train_split"
EVAL_SPLIT = "eval_split"
N_TRAIN = "n_train"
N_EVAL = "n_eval"
IMAGE_SHAPE = "image_shape"
SAMPLES_PNG = "samples_png"
# Bytes of the trial directory when the row was written; the last row is rewritten with the
# final figure once the trial finishes and its checkpoint policy has run (suite/store/disk.py).
TRIAL_BYTES = "trial_bytes"

# --- sample quality (filled by suite.metrics at each milestone) ------------------
FD_DOMAIN = "fd_domain"
KID_DOMAIN = "kid_domain"
KID_DOMAIN_STD = "kid_domain_std"
PRECISION_DOMAIN = "precision_domain"
RECALL_DOMAIN = "recall_domain"
FID_INCEPTION = "fid_inception"
KID_INCEPTION = "kid_inception"
KID_INCEPTION_STD = "kid_inception_std"
PRECISION_INCEPTION = "precision_inception"
RECALL_INCEPTION = "recall_inception"
INCEPTION_SCORE = "inception_score"
SPECTRAL_DISTANCE = "spectral_distance"
CHECKERBOARD_SCORE = "checkerboard_score"
CLASS_ACCURACY = "class_accuracy"
INTRA_CLASS_FD = "intra_class_fd"
TEST_ELBO = "test_elbo"
TEST_RECON_ERROR = "test_recon_error"
N_REAL = "n_real"
N_FAKE = "n_fake"
DOMAIN_WEIGHTS_ID = "domain_weights_id"
INCEPTION_WEIGHTS_ID = "inception_weights_id"
RESIZE_METHOD = "resize_method"
# The Keras InceptionV3 backbone (`inception_keras`; the `_inception` columns above are
# TTUR's frozen graph, the published FID protocol), and that protocol, recorded per row.
FID_INCEPTION_KERAS = "fid_inception_keras"
KID_INCEPTION_KERAS = "kid_inception_keras"
KID_INCEPTION_KERAS_STD = "kid_inception_keras_std"
PRECISION_INCEPTION_KERAS = "precision_inception_keras"
RECALL_INCEPTION_KERAS = "recall_inception_keras"
INCEPTION_SCORE_KERAS = "inception_score_keras"
INCEPTION_KERAS_WEIGHTS_ID = "inception_keras_weights_id"
FID_PROTOCOL = "fid_protocol"

# --- sample quality, qualified: density/coverage, noise floors, FD_inf, CAS ----
# A backbone's columns follow from its FD column (suite.metrics.backbones.base.BackboneColumns):
# density_<b>, coverage_<b>, <fd>_inf, and <metric>_floor for each floored metric.
DENSITY_DOMAIN = "density_domain"
COVERAGE_DOMAIN = "coverage_domain"
FD_DOMAIN_INF = "fd_domain_inf"
FD_DOMAIN_FLOOR = "fd_domain_floor"
KID_DOMAIN_FLOOR = "kid_domain_floor"
PRECISION_DOMAIN_FLOOR = "precision_domain_floor"
RECALL_DOMAIN_FLOOR = "recall_domain_floor"
DENSITY_DOMAIN_FLOOR = "density_domain_floor"
COVERAGE_DOMAIN_FLOOR = "coverage_domain_floor"
DENSITY_INCEPTION = "density_inception"
COVERAGE_INCEPTION = "coverage_inception"
FID_INCEPTION_INF = "fid_inception_inf"
FID_INCEPTION_FLOOR = "fid_inception_floor"
KID_INCEPTION_FLOOR = "kid_inception_floor"
PRECISION_INCEPTION_FLOOR = "precision_inception_floor"
RECALL_INCEPTION_FLOOR = "recall_inception_floor"
DENSITY_INCEPTION_FLOOR = "density_inception_floor"
COVERAGE_INCEPTION_FLOOR = "coverage_inception_floor"
DENSITY_INCEPTION_KERAS = "density_inception_keras"
COVERAGE_INCEPTION_KERAS = "coverage_inception_keras"
FID_INCEPTION_KERAS_INF = "fid_inception_keras_inf"
FID_INCEPTION_KERAS_FLOOR = "fid_inception_keras_floor"
KID_INCEPTION_KERAS_FLOOR = "kid_inception_keras_floor"
PRECISION_INCEPTION_KERAS_FLOOR = "precision_inception_keras_floor"
RECALL_INCEPTION_KERAS_FLOOR = "recall_inception_keras_floor"
DENSITY_INCEPTION_KERAS_FLOOR = "density_inception_keras_floor"
COVERAGE_INCEPTION_KERAS_FLOOR = "coverage_inception_keras_floor"
N_FLOOR = "n_floor"  # images in each of the two real subsets behind the floors
CAS = "cas"  # classification accuracy score (conditional models, eval.cas: true)
CAS_PROTOCOL = "cas_protocol"

# --- environment ------------------------------------------------------------------
HOSTNAME = "hostname"
HOSTS = "hosts"  # sorted unique hostnames of all the trial's ranks, comma-separated
NODES = "nodes"  # how many hosts the ranks ran on
DEVICE = "device"
TF_VERSION = "tf_version"
KERAS_VERSION = "keras_version"
GENBENCH_VERSION = "genbench_version"
PYTHON_VERSION = "python_version"
TIMESTAMP = "timestamp"

# Column -> logical type ("str", "int", "float"). The order is the file order.
COLUMN_TYPES: dict[str, str] = {
    SCHEMA_VERSION_COL: "int",
    SWEEP: "str",
    TRIAL_ID: "str",
    TRIAL_INDEX: "int",
    DATASET: "str",
    MODEL: "str",
    UPSAMPLING: "str",
    KERNEL_SIZE: "int",
    LATENT_DIM: "int",
    EPOCHS: "int",
    EPOCH: "int",
    SEED: "int",
    BATCH_SIZE: "int",
    GLOBAL_BATCH_SIZE: "int",
    WORKERS: "int",
    LR: "float",
    LR_SCALING: "str",
    LR_EFFECTIVE: "float",
    MAX_TRAIN_IMAGES: "int",
    STATUS: "str",
    ERROR: "str",
    IMAGES_PER_SEC: "float",
    IMAGES_PER_SEC_PER_WORKER: "float",
    STEP_TIME_P50_MS: "float",
    STEP_TIME_P95_MS: "float",
    EPOCH_TIME_S: "float",
    COMPILE_TIME_S: "float",
    TRAIN_TIME_S: "float",
    STEPS: "int",
    WARMUP_STEPS: "int",
    EVAL_TIME_S: "float",
    STEPS_PER_CALL: "int",
    STEPS_PER_CALL_SETTING: "str",
    PRECISION: "str",
    JIT_COMPILE: "bool",
    EPOCH_WALL_S: "float",
    WALL_TIME_S: "float",
    NONFINITE_STEPS_FROM: "int",
    NONFINITE_STEPS_TO: "int",
    FLOPS_PER_IMAGE: "int",
    EVAL_FLOPS_PER_IMAGE: "int",
    ACHIEVED_TFLOPS: "float",
    PEAK_TFLOPS: "float",
    PEAK_SOURCE: "str",
    PEAK_CALIBRATED_TFLOPS: "float",
    PEAK_BASIS: "str",
    PEAK_TRUSTED: "bool",
    PEAK_CPU_SHARE: "float",
    MFU: "float",
    DEPTH: "int",
    WIDTH: "float",
    BETA1: "float",
    PARAMS_TOTAL: "int",
    PARAMS_GENERATOR: "int",
    PARAMS_DISCRIMINATOR: "int",
    PARAMS_ENCODER: "int",
    PARAMS_DECODER: "int",
    LOSS_G: "float",
    LOSS_D: "float",
    ELBO: "float",
    LOSS_RECON: "float",
    LOSS_KL: "float",
    FD_DOMAIN: "float",
    KID_DOMAIN: "float",
    KID_DOMAIN_STD: "float",
    PRECISION_DOMAIN: "float",
    RECALL_DOMAIN: "float",
    FID_INCEPTION: "float",
    KID_INCEPTION: "float",
    KID_INCEPTION_STD: "float",
    PRECISION_INCEPTION: "float",
    RECALL_INCEPTION: "float",
    INCEPTION_SCORE: "float",
    SPECTRAL_DISTANCE: "float",
    CHECKERBOARD_SCORE: "float",
    CLASS_ACCURACY: "float",
    INTRA_CLASS_FD: "float",
    TEST_ELBO: "float",
    TEST_RECON_ERROR: "float",
    N_REAL: "int",
    N_FAKE: "int",
    DOMAIN_WEIGHTS_ID: "str",
    INCEPTION_WEIGHTS_ID: "str",
    RESIZE_METHOD: "str",
    FID_INCEPTION_KERAS: "float",
    KID_INCEPTION_KERAS: "float",
    KID_INCEPTION_KERAS_STD: "float",
    PRECISION_INCEPTION_KERAS: "float",
    RECALL_INCEPTION_KERAS: "float",
    INCEPTION_SCORE_KERAS: "float",
    INCEPTION_KERAS_WEIGHTS_ID: "str",
    FID_PROTOCOL: "str",
    DENSITY_DOMAIN: "float",
    COVERAGE_DOMAIN: "float",
    FD_DOMAIN_INF: "float",
    FD_DOMAIN_FLOOR: "float",
    KID_DOMAIN_FLOOR: "float",
    PRECISION_DOMAIN_FLOOR: "float",
    RECALL_DOMAIN_FLOOR: "float",
    DENSITY_DOMAIN_FLOOR: "float",
    COVERAGE_DOMAIN_FLOOR: "float",
    DENSITY_INCEPTION: "float",
    COVERAGE_INCEPTION: "float",
    FID_INCEPTION_INF: "float",
    FID_INCEPTION_FLOOR: "float",
    KID_INCEPTION_FLOOR: "float",
    PRECISION_INCEPTION_FLOOR: "float",
    RECALL_INCEPTION_FLOOR: "float",
    DENSITY_INCEPTION_FLOOR: "float",
    COVERAGE_INCEPTION_FLOOR: "float",
    DENSITY_INCEPTION_KERAS: "float",
    COVERAGE_INCEPTION_KERAS: "float",
    FID_INCEPTION_KERAS_INF: "float",
    FID_INCEPTION_KERAS_FLOOR: "float",
    KID_INCEPTION_KERAS_FLOOR: "float",
    PRECISION_INCEPTION_KERAS_FLOOR: "float",
    RECALL_INCEPTION_KERAS_FLOOR: "float",
    DENSITY_INCEPTION_KERAS_FLOOR: "float",
    COVERAGE_INCEPTION_KERAS_FLOOR: "float",
    N_FLOOR: "float",  # a count, but NaN (like the floors) when the samples were unusable
    CAS: "float",
    CAS_PROTOCOL: "str",
    TRAIN_SPLIT: "str",
    EVAL_SPLIT: "str",
    N_TRAIN: "int",
    N_EVAL: "int",
    IMAGE_SHAPE: "str",
    SAMPLES_PNG: "str",
    TRIAL_BYTES: "int",
    HOSTNAME: "str",
    HOSTS: "str",
    NODES: "int",
    DEVICE: "str",
    TF_VERSION: "str",
    KERAS_VERSION: "str",
    GENBENCH_VERSION: "str",
    PYTHON_VERSION: "str",
    TIMESTAMP: "str",
    CONFIG_JSON: "str",
}

COLUMNS: tuple[str, ...] = tuple(COLUMN_TYPES)

# Network name (GenerativeModel.param_counts) -> its parameter-count column.
PARAMS_COLUMNS: dict[str, str] = {
    "generator": PARAMS_GENERATOR,
    "discriminator": PARAMS_DISCRIMINATOR,
    "encoder": PARAMS_ENCODER,
    "decoder": PARAMS_DECODER,
}
# Training losses a model may report (GenerativeModel.loss_names are these columns).
LOSS_COLUMNS: tuple[str, ...] = (LOSS_G, LOSS_D, ELBO, LOSS_RECON, LOSS_KL)

# Trial-config columns: what identifies a configuration in analysis.
CONFIG_COLUMNS: tuple[str, ...] = (
    DATASET, MODEL, UPSAMPLING, KERNEL_SIZE, LATENT_DIM, EPOCHS, SEED,
    BATCH_SIZE, GLOBAL_BATCH_SIZE, WORKERS, LR, LR_SCALING, MAX_TRAIN_IMAGES,
    STEPS_PER_CALL_SETTING, PRECISION, DEPTH, WIDTH, BETA1, JIT_COMPILE,
)
