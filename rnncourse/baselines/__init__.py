"""Simple baselines that every model in the course is compared against on the same split.

    ngram  uniform and smoothed n-gram character models; the majority class
"""

from .ngram import majority_class_accuracy, ngram_cross_entropy, uniform_cross_entropy

__all__ = ["majority_class_accuracy", "ngram_cross_entropy", "uniform_cross_entropy"]
