public enum SealedStoreModule {}
