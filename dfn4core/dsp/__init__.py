"""Signal chain: STFT/ISTFT with carried state, ERB filterbank, and the model's input features."""
