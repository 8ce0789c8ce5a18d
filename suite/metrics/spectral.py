"""Upsampling-artifact measures from image power spectra.

Decoders that upsample with stride-2 transposed convolutions often leave a
pattern with a 2-pixel period (checkerboards, Odena et al. 2016), and
generated images in general misplace power at high frequencies (Durall et al.
2020). Both are invisible to Inception features, which are computed at a
fixed resolution after smoothing resampling, but obvious in the spectrum:
a 2-pixel period is energy at the Nyquist frequency, the highest one an
image of even size can hold.

Power is |FFT|^2 / (H W) of the mean-subtracted grayscale image, so by
Parseval its mean over frequencies is the pixel variance, whatever the size.
"""

from __future__ import annotations

import numpy as np

# Below the quantisation noise floor of 8-bit images ((1/255)^2 / 12 ~ 1e-6 per
# frequency), so it only guards log(0) and 0/0 on synthetic, perfectly smooth data.
POWER_EPS = 1e-10
BATCH_SIZE = 256


def check_images(images: np.ndarray) -> np.ndarray:
    """Return images as float64 [N, H, W, C], or raise ValueError."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4 or x.shape[0] < 1:
        raise ValueError(f"need images of shape [N, H, W, C]; got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("images contain NaN or inf")
    return x


def images_to_power(images: np.ndarray) -> np.ndarray:
    """Mean 2-D power spectrum [H, W] (unshifted) over images, after grayscale averaging.

    Grayscale first, because upsampling artifacts are shared by all channels and
    colour noise would only blur them; the per-image mean is removed so the DC
    term does not swamp the log scale. Batched to bound memory.
    """
    x = check_images(images)
    total = np.zeros(x.shape[1:3], dtype=np.float64)
    for start in range(0, x.shape[0], BATCH_SIZE):
        gray = x[start : start + BATCH_SIZE].mean(axis=3)
        gray = gray - gray.mean(axis=(1, 2), keepdims=True)
        total += (np.abs(np.fft.fft2(gray)) ** 2).sum(axis=0)
    return total / (x.shape[0] * x.shape[1] * x.shape[2])


def power_to_azimuthal_average(power: np.ndarray) -> np.ndarray:
    """Average a [H, W] unshifted power spectrum over rings of integer radius.

    All radii up to the corners are kept: the diagonal Nyquist frequency, where
    a checkerboard puts its energy, lies at radius ~ sqrt(2) H / 2, outside the
    inscribed circle.
    """
    shifted = np.fft.fftshift(power)
    h, w = shifted.shape
    yy, xx = np.indices((h, w))
    radius = np.rint(np.hypot(yy - h // 2, xx - w // 2)).astype(np.int64).ravel()
    sums = np.bincount(radius, weights=shifted.ravel())
    counts = np.bincount(radius)
    # No empty ring: walking out along an axis then an edge, the distance never
    # grows by more than 1 per pixel, so every rounded radius up to the max occurs.
    return sums / counts


def images_to_spectrum(images: np.ndarray) -> np.ndarray:
    """Azimuthally averaged power spectrum, index = integer radius from the centre."""
    return power_to_azimuthal_average(images_to_power(images))


def spectra_to_distance(fake: np.ndarray, real: np.ndarray, eps: float = POWER_EPS) -> float:
    """Mean over radii >= 1 of |log P_fake - log P_real|.

    Logs, because power falls by orders of magnitude with frequency and a
    relative error at high frequency matters as much as one at low frequency.
    Radius 0 (DC) is skipped: mean subtraction makes it zero for both.
    """
    if fake.shape != real.shape:
        raise ValueError(f"spectra differ in length ({fake.shape} vs {real.shape}); same H, W?")
    diff = np.abs(np.log(fake[1:] + eps) - np.log(real[1:] + eps))
    return float(diff.mean())


def spectral_distance(fake: np.ndarray, real: np.ndarray) -> float:
    """Log-spectral distance of fake to real images (0 = same radial spectrum)."""
    return spectra_to_distance(images_to_spectrum(fake), images_to_spectrum(real))


def images_to_nyquist_power(images: np.ndarray) -> float:
    """Mean power at the Nyquist bins (H/2, 0), (0, W/2), (H/2, W/2) of the spectrum.

    These three bins hold exactly the patterns with a 2-pixel period along rows,
    columns, or both (a checkerboard (-1)^(x+y) is all in (H/2, W/2)).
    """
    x = check_images(images)
    h, w = x.shape[1:3]
    if h % 2 or w % 2:
        raise ValueError(f"Nyquist bins need even image sides; got {h}x{w}")
    power = images_to_power(x)
    return float((power[h // 2, 0] + power[0, w // 2] + power[h // 2, w // 2]) / 3)


def checkerboard_score(fake: np.ndarray, real: np.ndarray, eps: float = POWER_EPS) -> float:
    """Nyquist power of fake images relative to real ones: 1 = like real, >> 1 = checkerboards.

    A ratio to real data rather than an absolute power, because natural images
    (and digit edges) have some Nyquist energy of their own.
    """
    return (images_to_nyquist_power(fake) + eps) / (images_to_nyquist_power(real) + eps)
