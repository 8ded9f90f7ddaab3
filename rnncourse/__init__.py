"""rnncourse: the code the course "Recurrent Neural Networks, from NumPy to Keras" builds.

Each module is one idea, readable top to bottom. Foundations (chapters 1-6):

    validation   shape, dtype, finite-value and settings checks, with messages that name the
                 argument, the expected and the given
    activations  tanh, sigmoid, relu, linear with derivatives from their outputs
    rnn          the vanilla RNN cell and sequence, forward and backward (BPTT)
    jacobians    step Jacobians and their products, gradient norms through time, truncated BPTT
    gradient_flow how far back a gradient reaches in an RNN, LSTM and GRU at initialisation
    lstm         the LSTM cell and sequence, forward and backward, and its gate activations
    gru          the GRU (both reset_after forms), forward and backward
    diagrams     LSTM and GRU gate diagrams drawn with matplotlib
    keras_bridge weights to and from Keras SimpleRNN/LSTM/GRU layers; a Keras layer run in NumPy
    layers       one-hot input and the dense readout
    losses       softmax cross-entropy (with masks) and mean squared error
    optim        gradient clipping, SGD, Adagrad, Adam
    gradcheck    numerical gradients and relative errors
    tasks        synthetic memory tasks: the adding problem and the delayed echo
    charmodel    a character-level RNN language model
    train        training and evaluation loops
    progress     a deterministic, line-based progress bar
    show         a function's source shown in a notebook
    fast         fast forward and backward passes (hoisted products, reused buffers), equal to
                 the clear ones; the Benchmarks appendix measures them
    processes    the batch split over worker processes, so that NumPy's element-wise work
                 runs on every core
    fused        the fast LSTM with each step's element-wise work in one compiled loop (Numba;
                 import it explicitly, `import rnncourse` does not load Numba)

Data, baselines and applications (chapters 7-12):

    data/        one loader per source (Shakespeare, IMDB, Chinese reviews, CO2, CMUdict), each
                 with a fixed, seeded split; forecasting windows
    baselines/   n-gram language models, majority class and TF-IDF, naive / seasonal naive /
                 SARIMA, letter-by-letter grapheme-to-phoneme
    keras_models/ the Keras models of the application chapters (import after setup_tensorflow)
    metrics      confusion matrix, accuracy, precision, recall, F1
    sampling     temperature, entropy and bits per character
    scan         linear recurrences by loop and by parallel scan; minGRU

The course's own machinery:

    repro        pinned TensorFlow set-up; measured values with stated tolerances
    nbval_tolerance  the nbval plugin that compares measured values within their tolerance
    exercises    the exercise sets' questions, known mistakes and self-checks
    grading      the instructor's grader: submissions run sandboxed, judged in the grader's process
"""

__version__ = "0.2.0"
